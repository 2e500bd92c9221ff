import pickle, numpy as np, re, sys
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
rows=pickle.load(open(sys.argv[1],'rb'))
def score(boost, mode='speaker', depth=100):
    per={}
    for conv,cat,ev,named,got in rows:
        sc=[]
        for i,(d,spk,text) in enumerate(got[:depth]):
            s=1.0/(60+i)
            if named and len(named)==1:
                if mode=='speaker' and spk in named: s+=boost
                if mode=='mention' and named[0].lower() in text.lower(): s+=boost
            sc.append((s,-i,d))
        order=[d for s,_,d in sorted(sc,reverse=True)]
        r=len(set(order[:10])&set(ev))/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    return per
for mode in ('speaker','mention'):
  for b in (0,0.002,0.005,0.01,0.02,1):
    for depth in (30,100):
        p=score(b,mode,depth)
        print(mode,b,depth,f"all {np.mean(p[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(p[c]):.3f}" for c in CATS))
