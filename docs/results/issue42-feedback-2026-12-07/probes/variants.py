"""Probe: cheaper feedback variants (no second model call / short keyword query), in sample."""
import sys, time, numpy as np, functools
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig, SearchConfig
import selfmem.memory._retrieve as R
from selfmem._timing import stage
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
VAR={}
orig=R.search
def patched(req, store, views, index, keywords, topics, graph=None, columns=None):
    v=VAR.get('v')
    if v is None: return orig(req, store, views, index, keywords, topics, graph, columns)
    cfg=req.config; allowed=None
    qvec = views.index_vectors(views.embed_query(req.query))
    run = functools.partial(R._one_pass, req, store=store, index=index, keywords=keywords, topics=topics, graph=graph,
                            allowed=allowed, columns=columns)
    depth=30
    first=run(req.query, qvec, depth)
    lists=[(1.0,[h.record.id for h in first])]; others={}
    n=VAR.get('n',1); a=VAR.get('a',1.0); w=VAR.get('w',1.0)
    top=first[:n]
    if 'vec' in v:
        hv=index.vectors([h.record.id for h in top]).astype(np.float32)
        m=qvec[0]+a*hv.mean(0); m=m/np.linalg.norm(m); moved=m[None,:].astype(qvec.dtype)
    elif 'gtxt' in v or 'otxt' in v:
        t2=" ".join([req.query,*(h.record.text for h in top)]); rq=dict(views.embed_query(req.query))
        role='general' if 'gtxt' in v else 'own'
        rq[role]=views.roles[role].embed([t2]); moved=views.index_vectors(rq)
    else:
        moved=views.index_vectors(views.embed_query(" ".join([req.query,*(h.record.text for h in top)])))
    if 'kwq' in v or 'dense' in v: text=req.query
    elif 'kwt' in v:
        text=" ".join([req.query,*(h.record.text for h in top)])
    if 'resc' in v:
        from selfmem.retrieval._search import zscore
        cands=R.gather(store, index, keywords, req.query, qvec, max(cfg.candidates,30), allowed, cfg.mode, columns)
        if 'dn' in v or 'kc' in v:
            have={c.id for c in cands}; extra=[]
            t2=" ".join([req.query,*(h.record.text for h in top)])
            if 'dn' in v:
                _, d=index.search(moved, cfg.candidates, allowed); extra+=[int(i) for i in d[0] if i>=0]
            if 'kc' in v:
                kid,_=keywords.candidates(t2, cfg.candidates, allowed); extra+=kid.tolist()
            extra=[i for i in dict.fromkeys(extra) if i not in have]
            from selfmem.retrieval._search import Candidate
            if extra:
                ev=index.vectors(extra)
                cands=cands+[Candidate(i,0.0,0.0,ev[j]) for j,i in enumerate(extra)]
        V=np.stack([c.vector for c in cands]).astype(np.float32)
        cos2=V@moved[0].astype(np.float32); bm=np.array([c.bm25 for c in cands])
        if 'bmt' in v: bm=np.asarray(keywords.score_docs(" ".join([req.query,*(h.record.text for h in top)]), [c.id for c in cands]))
        if 'qcos' in v: cos2=V@qvec[0].astype(np.float32)
        kw=cfg.keyword_weight; rel2=kw*zscore(bm)+(1-kw)*zscore(cos2)
        ids2=[cands[j].id for j in np.argsort(-rel2)[:depth]]
        lists.append((w,ids2))
        fused=R._fuse(req, lists, first, {}, qvec, index=index, keywords=keywords, store=store, topics=topics)
        return R._graph_api.replies(fused, req.k, graph, store, index, qvec, allowed, topics.top_of)
    if 'dense' in v:
        import dataclasses
        req2=dataclasses.replace(req, config=dataclasses.replace(cfg, mode='dense'))
        second=R._one_pass(req2, req.query, moved, depth, store=store, index=index, keywords=keywords, topics=topics, graph=graph, allowed=allowed, columns=columns)
    else:
        second=run(text, moved, depth)
    lists.append((w,[h.record.id for h in second])); others={h.record.id:h for h in second}
    fused=R._fuse(req, lists, first, others, qvec, index=index, keywords=keywords, store=store, topics=topics)
    if not (cfg.replies and req.expand and graph is not None): return fused
    return R._graph_api.replies(fused, req.k, graph, store, index, qvec, allowed, topics.top_of)
R.search=patched
import selfmem.memory._searching as S
for name in dir(S):
    if getattr(S,name) is orig: setattr(S,name,patched)
convs=load_locomo('/work/shared/data'); root=Path(sys.argv[1])
variants=[dict(v=None), dict(v='txt kwt'), dict(v='vec kwt'), dict(v='vec kwq'), dict(v='txt kwq'),
          dict(v='vec kwq',a=0.5), dict(v='vec kwq',a=2.0), dict(v='vec kwq',n=2), dict(v='vec kwt',n=2)]
if len(sys.argv)>2: variants=[eval(s) for s in sys.argv[2:]]
mems={c.name:Memory(root/f"{c.name}-default", MemoryConfig(), progress=False) for c in convs}
for var in variants:
    VAR.clear(); VAR.update(var); per={}; t=time.time()
    for c in convs:
        mem=mems[c.name]
        for q in c.questions:
            got=[h.record.metadata["dia_id"] for h in mem.search(q.question, k=10)]
            r=len(set(got)&set(q.evidence))/len(q.evidence)
            per.setdefault(q.category,[]).append(r); per.setdefault(0,[]).append(r)
    print(var, f"all {np.mean(per[0]):.3f}", ' '.join(f"{CATS[c]} {np.mean(per[c]):.3f}" for c in CATS), f"{time.time()-t:.0f}s", flush=True)
