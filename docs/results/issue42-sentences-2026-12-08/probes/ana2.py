exec(open('runs/p57/ana.py').read().split('def base')[0])
def base(h,mx,ts,ti,d): return [a for a,_ in h]
run("base",base)
# rank of evidence in base per category
from collections import Counter
for cat in (1,5):
    c=Counter()
    for cn,d in data.items():
        for qi,(qt,ct,ev) in enumerate(d['qs']):
            if ct!=cat: continue
            ids=[a for a,_ in d['hits'][qi]]
            for e in ev: c[min(ids.index(e),10) if e in ids else 99]+=1
    print(cat, sorted(c.items()))
for m in (1,2,3,5):
  for N in (30,):
    for w in (0.001,0.002,0.005):
      def f(h,mx,ts,ti,d,w=w,N=N,m=m):
        ids=[a for a,_ in h[:N]]
        mm=z([mx[ti[a]] for a in ids]); b=np.array([1/(60+r) for r in range(len(ids))])
        s=b+w*mm; s[:m]=10
        o=np.argsort(-s,kind='stable'); return [ids[i] for i in o]
      run(f"keep {m} rerank N={N} w={w}",f)
