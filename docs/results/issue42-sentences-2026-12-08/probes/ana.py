import sys, pickle, numpy as np
from collections import defaultdict
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
data=pickle.load(open('runs/p57/cache.pkl','rb')); SK=sys.argv[1] if len(sys.argv)>1 else 'S'
def run(name, fn):
    per=defaultdict(list)
    for cn,d in data.items():
        S,Q=d[SK],d['Q']; owner=np.array(d['owner'])
        tid_index={t:i for i,t in enumerate(d['tids'])}
        sims=Q@S.T  # (q, sents)
        tsims=Q@d['T'].T
        # max per turn
        nt=len(d['tids']); oi=np.array([tid_index[o] for o in owner])
        mx=np.full((len(Q),nt),-1.0)
        for j in range(len(oi)):
            np.maximum(mx[:,oi[j]],sims[:,j],out=mx[:,oi[j]])
        for qi,(qt,cat,ev) in enumerate(d['qs']):
            got=fn(d['hits'][qi], mx[qi], tsims[qi], tid_index, d)
            r=len(set(got[:10])&set(ev))/len(ev)
            per[cat].append(r); per[0].append(r)
    print(f"{name:40s} all {np.mean(per[0]):.3f} "+' '.join(f"{CATS[c][:5]} {np.mean(per[c]):.3f}" for c in CATS),flush=True)
def z(x): x=np.asarray(x,float); return (x-x.mean())/(x.std()+1e-9)
def base(h,mx,ts,ti,d): return [a for a,_ in h]
run("base",base)
for N in (20,30,50):
  for w in (0.002,0.005,0.01,0.02):
    def f(h,mx,ts,ti,d,w=w,N=N):
        h=h[:N]; ids=[a for a,_ in h]
        m=z([mx[ti[a]] for a in ids]); b=np.array([1/(60+r) for r in range(len(ids))])
        o=np.argsort(-(b+w*m),kind='stable'); return [ids[i] for i in o]
    run(f"rerank maxsim N={N} w={w}",f)
for w in (0.002,0.005,0.01):
    def f(h,mx,ts,ti,d,w=w):
        ids=[a for a,_ in h[:30]]
        m=z([mx[ti[a]]-ts[ti[a]] for a in ids]); b=np.array([1/(60+r) for r in range(len(ids))])
        o=np.argsort(-(b+w*m),kind='stable'); return [ids[i] for i in o]
    run(f"rerank maxsim-minus-turn w={w}",f)
for kk in (60,):
  for wg in (0.5,1.0):
    def f(h,mx,ts,ti,d,wg=wg,kk=kk):
        sc=defaultdict(float)
        for r,(a,_) in enumerate(h): sc[a]+=1/(kk+r)
        order=np.argsort(-mx)[:50]
        for r,i in enumerate(order): sc[d['tids'][i]]+=wg/(kk+r)
        return sorted(sc,key=lambda a:-sc[a])
    run(f"rrf global maxsim wg={wg}",f)
