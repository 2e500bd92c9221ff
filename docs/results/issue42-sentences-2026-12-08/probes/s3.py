import sys, re, pickle, numpy as np
sys.path.insert(0,'benchmarks')
from _data import load_locomo
from selfmem.retrieval._embedders import SentenceTransformerEmbedder
convs=load_locomo('/work/shared/data'); emb=SentenceTransformerEmbedder()
SPLIT=re.compile(r'(?<=[.!?])\s+')
data=pickle.load(open('runs/p57/cache.pkl','rb'))
for c in convs:
    sents=[]
    for turn in c.turns:
        parts=[s for s in SPLIT.split(turn.text) if s.strip()] or [turn.text]
        parts[0]=f"{turn.speaker}: {parts[0]}"
        sents+=parts
    d=data[c.name]; assert len(sents)==len(d['owner'])
    d['S_nat']=emb.embed(sents)
pickle.dump(data,open('runs/p57/cache.pkl','wb'))
