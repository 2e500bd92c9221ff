import pickle, numpy as np, sys, re
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
rows=pickle.load(open(sys.argv[1],'rb'))
MODE=sys.argv[2] if len(sys.argv) > 2 else "strip"
def isq(t):
    if MODE=='strip':
        body=re.sub(r'\[shares a photo:[^\]]*\]','',t.split(':',1)[1]).strip()
        return body.endswith('?')
    if MODE=='any': return '?' in t
    if MODE=='end': return t.rstrip().endswith('?')
    if MODE=='last': 
        sents=[x for x in re.split(r'(?<=[.!?])\s+', re.sub(r'\[[^\]]*\]$','',t.strip()).strip()) if x]
        return bool(sents) and sents[-1].endswith('?')
def nxt(d):
    s,n=d.split(':'); return f"{s}:{int(n)+1}"
def run(pen, succ, depth=30):
    per={}
    for conv,cat,ev,named,got in rows:
        sc={}
        for i,(d,_,t) in enumerate(got[:depth]):
            s=1/(60+i)
            if isq(t):
                s-=pen
                if succ: sc[nxt(d)]=max(sc.get(nxt(d),0), 1/(60+i)) 
            sc[d]=max(sc.get(d,-1),s) if d in sc else s
        top=sorted(sc,key=lambda d:-sc[d])[:10]
        r=len(set(top)&set(ev))/len(ev)
        per.setdefault(cat,[]).append(r); per.setdefault(0,[]).append(r)
    return per
for pen in (0,0.001,0.002,0.005,0.01,1):
  for succ in (0,1):
    for depth in (30,100):
        p=run(pen,succ,depth)
        print(pen,succ,depth,f"all {np.mean(p[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(p[c]):.3f}" for c in CATS))
