import sys, numpy as np, pickle
sys.path.insert(0,'benchmarks')
from _data import load_locomo
from selfmem.retrieval._embedders import SentenceTransformerEmbedder
emb=SentenceTransformerEmbedder()
convs=load_locomo('/work/shared/data')
out=[]
for c in convs:
    T=c.turns
    base=[t.record_text() for t in T]
    ses=[t.session for t in T]
    ctx=[(base[i-1]+"\n" if i>0 and ses[i-1]==ses[i] else "")+base[i]+("\n"+base[i+1] if i+1<len(T) and ses[i+1]==ses[i] else "") for i in range(len(T))]
    prev=[(base[i-1]+"\n" if i>0 and ses[i-1]==ses[i] else "")+base[i] for i in range(len(T))]
    E=emb.embed(ctx); P=emb.embed(prev); B=emb.embed(base)
    Q=emb.embed([q.question for q in c.questions])
    ids=[t.dia_id for t in T]
    for qi,q in enumerate(c.questions):
        out.append({k:[ids[j] for j in np.argsort(-(Q[qi]@M.T))[:100]] for k,M in (('ctx',E),('prev',P),('base',B))})
pickle.dump(out,open('/tmp/p/ctx.pkl','wb'))
