import sys, time, numpy as np
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data'); root=Path(sys.argv[1])
W=[0,0.00025,0.0005,0.001]
per={w:{} for w in W}
for c in convs:
    with Memory(root/f"{c.name}-default", MemoryConfig(), progress=False) as mem:
        for q in c.questions:
            hits=mem.search(q.question, k=30)
            ids=[h.record.metadata["dia_id"] for h in hits]
            ln=np.array([np.log(1+len(h.record.text.split())) for h in hits])
            z=(ln-ln.mean())/(ln.std()+1e-9)
            base=np.array([1/(60+r) for r in range(len(hits))])
            for w in W:
                order=np.argsort(-(base+w*z),kind="stable")[:10]
                got={ids[i] for i in order}
                r=len(got&set(q.evidence))/len(q.evidence)
                per[w].setdefault(q.category,[]).append(r); per[w].setdefault(0,[]).append(r)
for w in W:
    print(w, f"all {np.mean(per[w][0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(per[w][c]):.3f}" for c in CATS), flush=True)
