import sys, numpy as np, pickle
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig
from selfmem.retrieval._embedders import SentenceTransformerEmbedder
emb=SentenceTransformerEmbedder()
convs=load_locomo('/work/shared/data')
root=Path('runs/cv54/retrieval-cv')
out=[]
for c in convs:
    ids=[t.dia_id for t in c.turns]; pos={d:i for i,d in enumerate(ids)}
    B=emb.embed([t.record_text() for t in c.turns]); Q=emb.embed([q.question for q in c.questions])
    with Memory(root/f"{c.name}-default", MemoryConfig(), progress=False, read_only=True) as mem:
        tops=mem.topics()
        T=[]
        for t in tops:
            full=mem.topic(t.id)
            mem_d=[mem.get(r).metadata['dia_id'] for r in full.members]
            T.append((t.level,t.keywords,mem_d))
    print(c.name, len(T), 'levels', {l:sum(1 for x in T if x[0]==l) for l in {x[0] for x in T}}, 'sizes', sorted(len(x[2]) for x in T)[-5:])
    KW=emb.embed([' '.join(kw[:10]) for _,kw,_ in T])
    C=np.stack([B[[pos[d] for d in m if d in pos]].mean(0) if m else np.zeros(B.shape[1]) for _,_,m in T]); C/=np.linalg.norm(C,axis=1,keepdims=True)+1e-9
    for qi,q in enumerate(c.questions):
        qv=Q[qi]
        out.append(dict(level=[x[0] for x in T], kw=(KW@qv).tolist(), cen=(C@qv).tolist(),
                        members=[[ (d, float(B[pos[d]]@qv)) for d in m if d in pos] for _,_,m in T]))
pickle.dump(out,open('/tmp/p/topics.pkl','wb'))
