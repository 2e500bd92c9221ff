import sys, json, re, numpy as np, pickle
sys.path.insert(0,'benchmarks')
from pathlib import Path
from _data import load_locomo
from selfmem import Memory, MemoryConfig, SearchConfig
CATS={1:"multi-hop",2:"temporal",3:"open-domain",4:"single-hop",5:"adversarial"}
convs=load_locomo('/work/shared/data')
root=Path(sys.argv[1])
fb=len(sys.argv)>2
rows=[]
for c in convs:
    names={t.speaker for t in c.turns}
    cfg=MemoryConfig()
    if fb: cfg=cfg.replace(search=SearchConfig(feedback=1))
    with Memory(root/f"{c.name}-default", cfg, progress=False) as mem:
        for q in c.questions:
            hs=mem.search(q.question, k=100)
            got=[(h.record.metadata["dia_id"], h.record.text.split(':',1)[0], h.record.text) for h in hs]
            named=[n for n in names if re.search(r'\b'+n.lower()+r'\b', q.question.lower())]
            rows.append((c.name,q.category,sorted(q.evidence),named,got))
pickle.dump(rows,open(f'/tmp/p/rows{"-fb" if fb else ""}.pkl','wb'))
