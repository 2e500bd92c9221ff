import sys, numpy as np, pickle
sys.path.insert(0,'benchmarks')
from _data import load_locomo
from sklearn.cluster import KMeans, AgglomerativeClustering
from selfmem.retrieval._embedders import SentenceTransformerEmbedder
emb=SentenceTransformerEmbedder()
convs=load_locomo('/work/shared/data')
out=[]
for c in convs:
    ids=[t.dia_id for t in c.turns]
    B=emb.embed([t.record_text() for t in c.turns]); Q=emb.embed([q.question for q in c.questions])
    res={}
    for size in (4,8,16):
        k=max(2,len(ids)//size)
        lab=AgglomerativeClustering(n_clusters=k, metric='cosine', linkage='average').fit_predict(B)
        C=np.stack([B[lab==j].mean(0) for j in range(k)]); C/=np.linalg.norm(C,axis=1,keepdims=True)
        res[size]=(lab,C)
    for qi,q in enumerate(c.questions):
        qv=Q[qi]; s=B@qv
        d={}
        for size,(lab,C) in res.items():
            cs=C@qv; order=np.argsort(-cs)[:10]
            d[size]=[[ (ids[i], float(s[i])) for i in sorted(np.where(lab==j)[0], key=lambda i:-s[i])] for j in order]
        out.append(d)
pickle.dump(out,open('/tmp/p/raptor.pkl','wb'))
