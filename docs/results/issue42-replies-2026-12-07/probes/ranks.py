import sys, json, numpy as np
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig, SearchConfig
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data')
root=Path(sys.argv[1])
bins=[1,10,20,50,100,10**9]
out={}
spk={}
for c in convs:
    tm={t.dia_id:t for t in c.turns}
    names={t.speaker for t in c.turns}
    with Memory(root/f"{c.name}-default", MemoryConfig(), progress=False) as mem:
        for q in c.questions:
            got=[h.record.metadata["dia_id"] for h in mem.search(q.question, k=100)]
            for e in q.evidence:
                r=got.index(e)+1 if e in got else 10**8
                out.setdefault(CATS[q.category],[]).append(r)
                if q.category==1 and e in tm:
                    named=[n for n in names if n.lower() in q.question.lower()]
                    spk.setdefault('named',0); spk['named']+= bool(named)
                    spk.setdefault('same',0); spk['same']+= bool(named) and tm[e].speaker in named
                    spk.setdefault('n',0); spk['n']+=1
for cat,rs in out.items():
    rs=np.array(rs)
    print(cat, len(rs), ' '.join(f"<={b}:{np.mean(rs<=b):.3f}" for b in [1,5,10,20,50,100]))
print(spk)
