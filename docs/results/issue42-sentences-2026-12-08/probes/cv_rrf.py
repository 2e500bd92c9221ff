import sys, pickle, numpy as np
from collections import defaultdict
SK=sys.argv[1]
data=pickle.load(open('runs/p57/cache.pkl','rb'))
def z(x): x=np.asarray(x,float); return (x-x.mean())/(x.std()+1e-9)
grid=[(0,0.0,30)]+[(m,w,N) for m in (0,1,2,3,5) for w in (0.0005,0.001,0.002,0.003,0.005) for N in (20,30)]
res={}  # (conv, setting) -> list of (cat, r)
for cn,d in data.items():
    S,Q=d[SK],d['Q']; ti={t:i for i,t in enumerate(d['tids'])}; oi=np.array([ti[o] for o in d['owner']])
    sims=Q@S.T; mx=np.full((len(Q),len(ti)),-1.0)
    for j in range(len(oi)): np.maximum(mx[:,oi[j]],sims[:,j],out=mx[:,oi[j]])
    for g in grid:
        m,w,N=g; out=[]
        for qi,(qt,cat,ev) in enumerate(d['qs']):
            ids=[a for a,_ in d['hits'][qi][:N]]
            s=np.array([1/(60+r) for r in range(len(ids))])+w*z([mx[qi,ti[a]] for a in ids]); s[:m]=10
            got=[ids[i] for i in np.argsort(-s,kind='stable')][:10]
            out.append((cat,len(set(got)&set(ev))/len(ev)))
        res[cn,g]=out
convs=list(data)
held=[]
for c in convs:
    tr=[x for x in convs if x!=c]
    best=max(grid,key=lambda g: np.mean([r for x in tr for _,r in res[x,g]]))
    rs=res[c,best]; held+=rs
    print(c,best,f"held {np.mean([r for _,r in rs]):.3f} base {np.mean([r for _,r in res[c,grid[0]]]):.3f}")
print("held-out all",f"{np.mean([r for _,r in held]):.3f}", {k:round(np.mean([r for c_,r in held if c_==k]),3) for k in range(1,6)})
