import sys, time
from pathlib import Path
from selfmem import Memory, MemoryConfig
for d in sorted(Path(sys.argv[1]).iterdir()):
    t=time.time()
    with Memory(d, MemoryConfig(), progress=False) as m:
        m._state.sentences.rebuild()
        print(d.name, len(m._state.sentences.units), sum(len(u) for u in m._state.sentences.units.values()), f"{time.time()-t:.0f}s", flush=True)
