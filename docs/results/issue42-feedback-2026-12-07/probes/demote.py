import sys, numpy as np
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data'); root=Path(sys.argv[1])
rows=[]
for c in convs:
    with Memory(root/f"{c.name}-default", MemoryConfig(), progress=False) as mem:
        for q in c.questions:
            hs=mem.search(q.question, k=20)
            rows.append((q.category, set(q.evidence), [(h.record.metadata["dia_id"], h.record.id, h.expanded_from, h.via) for h in hs]))
for d in (0, 1, 2, 3, 5, 100):
    per={}
    for cat, ev, hs in rows:
        lifted={hs[i][1] for i in range(1,len(hs)) if hs[i-1][2]==hs[i][1]}
        order=[]
        moved=[]
        for i,(dia,rid,e,via) in enumerate(hs):
            order.append([i,dia])
            if rid in lifted and d: order[-1][0]=i+d+0.5
        order.sort()
        top=[dia for _,dia in order[:10]]
        r=len(set(top)&ev)/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    print(d, f"all {np.mean(per[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(per[c]):.3f}" for c in CATS), flush=True)
