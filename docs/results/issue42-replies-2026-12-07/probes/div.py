import pickle, numpy as np, sys
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
rows=pickle.load(open(sys.argv[1],'rb'))
def score(lam, depth=30, cap=None):
    per={}
    for conv,cat,ev,named,got in rows:
        cand=[(1.0/(60+i), d) for i,(d,_,_) in enumerate(got[:depth])]
        out=[]; seen={}
        while cand and len(out)<10:
            best=max(range(len(cand)), key=lambda j: cand[j][0]-lam*seen.get(cand[j][1].split(':')[0],0))
            s,d=cand.pop(best); out.append(d); ses=d.split(':')[0]; seen[ses]=seen.get(ses,0)+1
        r=len(set(out)&set(ev))/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    return per
for lam in (0,0.0005,0.001,0.002,0.004,0.01):
    for depth in (20,30,50):
        p=score(lam,depth)
        print(lam,depth,f"all {np.mean(p[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(p[c]):.3f}" for c in CATS))
