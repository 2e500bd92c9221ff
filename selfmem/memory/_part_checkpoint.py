"""The checkpoint part: DuckDB's write-ahead log is folded into the store file off the write path.

DuckDB checkpoints automatically inside the commit that makes its WAL exceed ``checkpoint_threshold``
(16 MB by default); at 30k-100k records that commit took 250-350 ms (benchmarks/add_latency.py). A
writer's connection therefore gets a high threshold (``WAL_LIMIT`` x 8), and this part runs
``CHECKPOINT`` through a second connection in the background once the WAL passes ``WAL_LIMIT``.
Durability is unchanged: a committed record is in the WAL; the WAL is replayed if the process dies.
"""

from __future__ import annotations

from typing import Any

from ._parts import Part

__all__ = ["CheckpointPart", "WAL_LIMIT"]

WAL_LIMIT = 32 * 2**20


class CheckpointPart(Part):
    """Checkpoints the store in the background when its WAL grows past ``WAL_LIMIT`` bytes."""

    name = "store checkpoint"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        if ctx.writable:
            ctx.store.set_checkpoint_threshold(WAL_LIMIT * 8)

    def maintain(self) -> None:
        if not self.ctx.writable or self.refit.running or self.ctx.store.wal_bytes() < WAL_LIMIT:
            return

        def job() -> None:
            reader = self.reader()
            try:
                reader.checkpoint()
            finally:
                if reader is not self.ctx.store:
                    reader.close()

        self.refit.start(job, lambda _: None)
