# probe: sentence-level max-sim of MiniLM over each turn's sentences, re-ranking the default search
import sys, time, re, pickle, numpy as np
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig
from selfmem.retrieval._embedders import SentenceTransformerEmbedder
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data'); root=Path(sys.argv[1]); K=int(sys.argv[2]) if len(sys.argv)>2 else 50
cache=Path('runs/p57/cache.pkl')
emb=SentenceTransformerEmbedder()
SPLIT=re.compile(r'(?<=[.!?])\s+')
if cache.exists(): data=pickle.load(open(cache,'rb'))
else:
    data={}
    for c in convs:
        t=time.time()
        sents=[];owner=[]
        for turn in c.turns:
            parts=[s for s in SPLIT.split(turn.text) if s.strip()] or [turn.text]
            for s in parts: sents.append(f"{turn.speaker}: {s}"); owner.append(turn.dia_id)
        S=emb.embed(sents); T=emb.embed([t.record_text() for t in c.turns])
        Q=emb.embed([q.question for q in c.questions])
        hits=[]
        with Memory(root/f"{c.name}-default", MemoryConfig(), progress=False) as mem:
            for q in c.questions:
                hs=mem.search(q.question, k=K)
                hits.append([(h.record.metadata["dia_id"], h.score) for h in hs])
        data[c.name]=dict(S=S,owner=owner,T=T,tids=[t.dia_id for t in c.turns],Q=Q,hits=hits,
                          qs=[(q.question,q.category,q.evidence) for q in c.questions],
                          lens={t.dia_id:len(t.record_text()) for t in c.turns})
        print(c.name,len(sents),len(c.turns),f"{time.time()-t:.0f}s",flush=True)
    pickle.dump(data,open(cache,'wb'))
