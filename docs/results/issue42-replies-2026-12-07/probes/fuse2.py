import pickle, numpy as np, sys
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
rows=pickle.load(open(sys.argv[1],'rb')); rp=pickle.load(open('/tmp/p/raptor.pkl','rb'))
def run(size,m,e,w):
    per={}
    for (conv,cat,ev,named,got),cx in zip(rows,rp):
        sc={}
        for i,(d,_,_) in enumerate(got[:30]): sc[d]=sc.get(d,0)+1/(60+i)
        lst=[]
        for cl in cx[size][:m]: lst+= [d for d,_ in cl[:e]]
        seen=set(); lst=[d for d in lst if not (d in seen or seen.add(d))]
        for i,d in enumerate(lst): sc[d]=sc.get(d,0)+w/(60+i)
        top=sorted(sc,key=lambda d:-sc[d])[:10]
        r=len(set(top)&set(ev))/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    return per
for size in (4,8,16):
  for m in (1,3,5):
    for e in (2,5):
      for w in (0.25,0.5):
        p=run(size,m,e,w)
        print(size,m,e,w,f"all {np.mean(p[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(p[c]):.3f}" for c in CATS))
