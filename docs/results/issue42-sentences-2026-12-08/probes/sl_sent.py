import sys, time
sys.path.insert(0,'benchmarks')
from search_latency import config
from selfmem import Memory
t=time.time()
with Memory(sys.argv[1], config("hash"), progress=False) as m:
    m._state.sentences.rebuild()
    u=m._state.sentences.units
    print(len(u), sum(len(x) for x in u.values()), f"{time.time()-t:.0f}s", flush=True)
