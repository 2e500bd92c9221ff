"""The checkpoint part: DuckDB's write-ahead log is folded into the store file off the write path.

DuckDB checkpoints automatically inside the commit that makes its WAL exceed ``checkpoint_threshold``
(16 MB by default); at 33k-67k records that commit took 263-356 ms, and a checkpoint run from a
second connection still held the writer's next commit for its whole duration (411 ms at 68k;
benchmarks/add_latency.py, docs/benchmarks-history.md). So a writer checkpoints rarely: its connection's
threshold is ``4 * WAL_LIMIT``, this part runs ``CHECKPOINT`` in the background once the WAL passes
``WAL_LIMIT`` (256 MB, about 400k records of hash-embedder size, fewer with real models), and DuckDB
checkpoints when ``close()`` closes the store. Durability is unchanged: a committed record is in the WAL, which DuckDB
replays when a memory is opened after a crash.
"""

from __future__ import annotations

from ._parts import Part, PartContext

__all__ = ["CheckpointPart", "WAL_LIMIT"]

WAL_LIMIT = 256 * 2**20


class CheckpointPart(Part):
    """Checkpoints the store in the background when its WAL grows past ``WAL_LIMIT`` bytes."""

    name = "store checkpoint"

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        if ctx.writable:
            ctx.store.set_checkpoint_threshold(WAL_LIMIT * 4)

    def maintain(self) -> None:
        if not self.ctx.writable or self.refit.running or self.ctx.store.wal_bytes() < WAL_LIMIT:
            return

        def job() -> None:
            with self.reading(snapshot=False) as store:  # CHECKPOINT cannot run inside a transaction
                store.checkpoint()

        self.refit.start(job, lambda _: None)
