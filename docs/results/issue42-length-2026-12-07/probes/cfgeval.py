import sys, time, numpy as np
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig, SearchConfig
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data'); root=Path(sys.argv[1])
for spec in sys.argv[2:]:
    kw=eval(f"dict({spec})"); per={}; t=time.time()
    cfg=MemoryConfig().replace(search=SearchConfig(**kw))
    for c in convs:
        with Memory(root/f"{c.name}-default", cfg, progress=False) as mem:
            for q in c.questions:
                got=[h.record.metadata["dia_id"] for h in mem.search(q.question, k=10)]
                r=len(set(got)&set(q.evidence))/len(q.evidence)
                per.setdefault(q.category,[]).append(r); per.setdefault(0,[]).append(r)
    print(spec, f"all {np.mean(per[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(per[c]):.3f}" for c in CATS), f"{time.time()-t:.0f}s", flush=True)
