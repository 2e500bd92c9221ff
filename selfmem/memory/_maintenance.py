"""Keeping the derived parts current on request: ``Memory.wait``, ``Memory.rebuild`` and doctor's repair."""

from __future__ import annotations

from .._interrupt import check_interrupt
from . import _health as h
from . import _validate as v
from ._opening import reembed_roles
from ._part_vectors import VectorPart
from ._state import MemoryState

__all__ = ["Maintenance"]


class Maintenance:
    """Waits, rebuilds and repairs of one handle (``wait``/``rebuild``: the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def wait(self) -> None:
        """``Memory.wait``: until no refit runs and none is due."""
        self.state.settle()

    def rebuild(self, *, reembed: bool = False) -> None:
        """``Memory.rebuild``: every part refitted from the store (after re-embedding, with ``reembed``)."""
        v.check_flag(reembed, "reembed")
        s = self.state
        store = s.live()
        if reembed:
            roles = [r for r in s.views.roles if r not in s.reembedded]
            s.reembedded |= reembed_roles(store, s.views, roles, s.progress)
        h.mark_rebuild(store)
        assert s.ctx is not None
        with s.ctx.sharing():  # the parts refit one after another on one store: read its vectors once
            for part in s.parts:
                part.rebuild()
                check_interrupt()  # between parts: each is whole, and the next open or rebuild refits the rest

    def repair(self, names: set[str], *, index_only: bool) -> list[str]:
        """Rebuild the parts named ``names``, in dependency order (``memctl doctor --repair``); the vector
        part rebuilds only its index when ``index_only``. Returns the names rebuilt."""
        done = []
        s = self.state
        with s.lock:
            s.writable()
            for part in s.parts:
                if part.name not in names:
                    continue
                if isinstance(part, VectorPart) and index_only:
                    part.rebuild_index()
                else:
                    part.rebuild()
                done.append(part.name)
        return done
