import pickle, numpy as np, sys
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
rows=pickle.load(open(sys.argv[1],'rb')); ctx=pickle.load(open('/tmp/p/ctx.pkl','rb'))
assert len(rows)==len(ctx)
def run(key,w,depth):
    per={}
    for (conv,cat,ev,named,got),cx in zip(rows,ctx):
        sc={}
        for i,(d,_,_) in enumerate(got[:30]): sc[d]=sc.get(d,0)+1/(60+i)
        for i,d in enumerate(cx[key][:depth]): sc[d]=sc.get(d,0)+w/(60+i)
        top=sorted(sc,key=lambda d:-sc[d])[:10]
        r=len(set(top)&set(ev))/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    return per
for key in ('ctx','prev','base'):
  for w in (0,0.25,0.5,1.0):
    for depth in (10,30):
        p=run(key,w,depth)
        print(key,w,depth,f"all {np.mean(p[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(p[c]):.3f}" for c in CATS))
