"""The ``memctl`` command group; each command calls one public function of selfmem."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import click

from .._errors import SelfmemError
from ._common import EXIT_HELP, EXIT_INTERRUPTED, SafePath, emit, errors, json_opt, path_arg
from ._inspect import inspect
from ._serve import open_memory, serve, url_opt
from ._tools import doctor, export, map_, migrate

__all__ = ["main", "cli"]

@click.group(help="Inspect and maintain selfmem memory directories.\n\n" + EXIT_HELP)
@click.version_option(package_name="selfmem")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.obj = {"debug": debug}


for _command in (inspect, doctor, export, map_, migrate, serve):
    cli.add_command(_command)


@cli.command()
@path_arg
@click.argument("query")
@click.option("-k", "--k", "k", default=5, show_default=True, help="Number of hits.")
@click.option("--kind", "kinds", multiple=True, help="Only records of this kind (repeatable).")
@click.option("--session", "sessions", multiple=True, help="Only records of this session (repeatable).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword", "topics"]), default=None,
              help="Ranking mode (default: the memory's config).")
@url_opt
@json_opt
@errors
def search(path: str, query: str, k: int, kinds: tuple[str, ...], sessions: tuple[str, ...], mode: str | None,
           url: str | None, as_json: bool) -> None:
    """Print the K memories at PATH most relevant to QUERY (works while a writer runs)."""
    if not url:
        _warm_models(path)
    with open_memory(path, url) as mem:
        hits = mem.search(query, k=k, kinds=list(kinds) or None, sessions=list(sessions) or None, mode=mode)

    def human(hs: Any) -> str:
        return "\n".join(f"{h.rank + 1:>3}. [{h.record.id}] d={h.distance:.3f} {h.record.kind}: "
                         f"{h.record.text[:100]!r}" for h in hs) or "(no hits)"

    emit(hits, as_json, human)


@cli.command()
@path_arg
@click.argument("text")
@click.option("--kind", default="note", show_default=True, help="Record kind.")
@click.option("--session", default=None, help="Session name.")
@click.option("--metadata", default=None, help="Metadata as a JSON object.")
@json_opt
@errors
def add(path: str, text: str, kind: str, session: str | None, metadata: str | None, as_json: bool) -> None:
    """Add TEXT to the memory at PATH (created if missing) and print its id."""
    from ..memory import Memory  # loaded when a command runs (memctl --url never needs it)

    try:
        meta = json.loads(metadata) if metadata else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--metadata") from exc
    new = not Path(path).exists()
    try:
        with Memory(path) as mem:
            rid = mem.add(text, kind=kind, metadata=meta, session=session)
    except SelfmemError:
        if new:  # a rejected add leaves no new memory behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    emit({"id": rid}, as_json, lambda d: str(d["id"]))


@cli.command(name="import")
@path_arg
@click.argument("file", type=SafePath(dir_okay=False))
@click.option("--kind", default="note", show_default=True, help="Kind for lines that name none.")
@click.option("--session", default=None, help="Put every record in this session (overrides the file's).")
@json_opt
@errors
def import_(path: str, file: str, kind: str, session: str | None, as_json: bool) -> None:
    """Add the records of FILE to the memory at PATH (created if missing).

    FILE is JSON Lines (``memctl export`` output, or objects with at least "text") or plain text (one
    record per line). Every line is checked before anything is written; records keep their session,
    time, metadata and key, and parents are mapped to the new ids.
    """
    from ..memory import Memory  # loaded when a command runs (memctl --url never needs it)

    new = not Path(path).exists()
    try:
        with Memory(path) as mem:
            ids = mem.import_records(file, kind=kind, session=session)
    except SelfmemError:
        if new:  # a rejected import leaves no new memory behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    emit({"imported": len(ids), "ids": ids}, as_json, lambda d: f"imported {d['imported']} records")


@cli.command()
@path_arg
@click.option("--members", "show_members", is_flag=True, help="Include member record ids (JSON only).")
@url_opt
@json_opt
@errors
def topics(path: str, show_members: bool, url: str | None, as_json: bool) -> None:
    """Print the topic tree of the memory at PATH (top level first; works while a writer runs)."""
    with open_memory(path, url) as mem:
        nodes = mem.topics()
        if show_members:
            nodes = [mem.topic(t.id) for t in nodes]

    def human(ns: Any) -> str:
        by_id = {t.id: t for t in ns}
        lines: list[str] = []

        def walk(t: Any, depth: int) -> None:
            flag = " (provisional)" if t.provisional else ""
            lines.append(f"{'  ' * depth}[{t.id}] {t.size:>6}  {', '.join(t.keywords[:6])}{flag}")
            for c in t.children:
                walk(by_id[c], depth + 1)

        for t in ns:
            if t.parent is None:
                walk(t, 0)
        return "\n".join(lines) or "(no topics yet)"

    emit(nodes, as_json, human)


@cli.command()
@path_arg
@click.option("--reembed", is_flag=True, help="Re-run the embedders over every record first (after a model change).")
@json_opt
@errors
def rebuild(path: str, reembed: bool, as_json: bool) -> None:
    """Refit whitening, index, topics and graph of the memory at PATH from its store."""
    from ..memory import Memory  # loaded when a command runs (memctl --url never needs it)

    with Memory(path, create=False, reembed=reembed) as mem:
        mem.rebuild(reembed=reembed)
        stats = mem.stats()
    emit(stats.index, as_json, lambda i: f"rebuilt index: {i}")


@cli.command()
@path_arg
@click.argument("node")
@click.option("--rel", "rels", multiple=True, help="Follow only this edge type (repeatable).")
@click.option("--direction", type=click.Choice(["both", "out", "in"]), default="both", show_default=True)
@click.option("--depth", default=1, show_default=True, help="Steps from NODE.")
@click.option("--limit", default=50, show_default=True, help="Nodes shown at most.")
@click.option("--entities", is_flag=True, help="Also show the entities the memories MENTION (names, key words).")
@url_opt
@json_opt
@errors
def graph(path: str, node: str, rels: tuple[str, ...], direction: str, depth: int, limit: int, entities: bool,
          url: str | None, as_json: bool) -> None:
    """Show the knowledge graph around NODE (a memory id, or topic:ID, session:NAME, task:ID, entity:PHRASE)."""
    from .._config import ENTITY_RELS, GRAPH_RELS

    start: int | str = int(node) if node.isdigit() else node
    follow = list(dict.fromkeys([*(rels or GRAPH_RELS), *ENTITY_RELS])) if entities else list(rels) or None
    with open_memory(path, url) as mem:
        sub = mem.neighbours(start, follow, direction=direction, depth=depth, limit=limit)

    def human(g: Any) -> str:
        lines = [f"{n.key:<24} {n.label:<8} {str(n.props.get('text') or n.props.get('label') or n.props.get('name', ''))[:80]!r}"
                 for n in g.nodes]
        lines += [f"  {e.src} -[{e.rel} {e.weight:.2f}]-> {e.dst}" for e in g.edges]
        return "\n".join(lines)

    emit(sub, as_json, human)


def _warm_models(path: str) -> None:
    """Load the memory's embedders in a thread while the memory opens (they are shared per process, so
    the search finds them loaded): a ``memctl search`` of a 100k-memory store took 3.1 s in sequence."""
    from ..memory._opening import read_config
    from ..retrieval._models import make_embedder, make_own_embedder

    def warm() -> None:
        try:
            ec = read_config(Path(path)).embedding
            for emb in (make_embedder(ec.general, ec), make_own_embedder(ec.own, ec)):
                if emb is not None:
                    emb.embed(["warm up"])
        except (SelfmemError, OSError):  # the open that follows reports what is wrong
            return

    threading.Thread(target=warm, name="selfmem-warm-models", daemon=True).start()


def main() -> None:
    """Entry point of the ``memctl`` console script.

    Every command has closed its memory and written its output when ``cli()`` returns, so the process
    ends there with ``os._exit``: the interpreter's teardown of torch, FAISS and DuckDB took 0.8 s of a
    1-3 s command and does nothing a finished command needs. (``memctl --debug`` keeps the normal exit.)
    """
    try:
        cli()
        code = 0
    except SystemExit as exc:  # click's standalone mode always ends here
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    if "--debug" in sys.argv[1:2]:
        sys.exit(code)
    handles = sys.modules.get("selfmem.memory._registry")  # loaded only by commands that opened a memory here
    if handles is not None:  # (memctl search --url never imports the memory stack: it stays a 0.1 s command)
        handles.close_all(wait=code != EXIT_INTERRUPTED)  # what an interrupted command left open (os._exit skips
        # the interpreter's exit hooks)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
