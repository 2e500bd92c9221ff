import sys, pickle, numpy as np
from collections import defaultdict
data=pickle.load(open('runs/p57/cache.pkl','rb'))
def z(x): x=np.asarray(x,float); return (x-x.mean())/(x.std()+1e-9)
res=defaultdict(list)
grid=[(0,5.0)]+[(M,W) for M in (5,10,20,40) for W in (3.0,5.0,8.0)]
for cn,d in data.items():
    S,Q=d['S'],d['Q']; ti={t:i for i,t in enumerate(d['tids'])}; oi=np.array([ti[o] for o in d['owner']])
    sims=Q@S.T; mx=np.full((len(Q),len(ti)),-1.0)
    for j in range(len(oi)): np.maximum(mx[:,oi[j]],sims[:,j],out=mx[:,oi[j]])
    for qi,(qt,cat,ev) in enumerate(d['qs']):
        base=[a for a,_ in d['hits'][qi][:30]]
        top=[d['tids'][i] for i in np.argsort(-mx[qi])]
        for M,W in grid:
            extra=[a for a in top if a not in base][:M]
            ids=base+extra
            s=-np.arange(len(ids))+W*z([mx[qi,ti[a]] for a in ids])
            got=[ids[i] for i in np.argsort(-s,kind='stable')][:10]
            r=len(set(got)&set(ev))/len(ev)
            res[(M,W)].append((cat,r))
for g in grid:
    rs=res[g]; print(g, f"{np.mean([r for _,r in rs]):.3f}", ' '.join(f"{np.mean([r for c,r in rs if c==k]):.3f}" for k in range(1,6)))
