"""The ``memctl`` command group; each command calls one public function of selfmem."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from .._errors import SelfmemError
from ..memory import Memory
from ..memory._importing import read_records

__all__ = ["main", "cli"]

EXIT_ERROR = 1


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def _emit(obj: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    click.echo(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False) if as_json else human(obj))


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn SelfmemError into a one-line message and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SelfmemError as exc:
            click.echo(f"memctl: error: {exc}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


class _SafePath(click.Path):
    """click.Path that refuses a NUL character with a usage error (os.stat raises ValueError on it)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            self.fail("a path cannot contain a NUL character", param, ctx)
        return super().convert(value, param, ctx)


_path = click.argument("path", type=_SafePath(file_okay=False))
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group()
@click.version_option(package_name="selfmem")
def cli() -> None:
    """Inspect and maintain selfmem memory directories.

    Exit codes: 0 success, 1 a selfmem error (message on stderr), 2 bad usage.
    """


@cli.command()
@_path
@_json
@_errors
def inspect(path: str, as_json: bool) -> None:
    """Show counts, embedders, index and config of the memory at PATH (works while a writer runs)."""
    with Memory(path, read_only=True) as mem:
        stats = mem.stats()

    def human(s: Any) -> str:
        lines = [f"memory   {s.path}", f"records  {s.records}"]
        lines += [f"  kind {k}: {n}" for k, n in s.kinds.items()]
        lines += [f"  session {k or '(none)'}: {n}" for k, n in s.sessions.items()]
        lines += [f"embedder {role}: {fp.get('name')} dim={fp.get('dim')} {fp.get('revision')}"
                  for role, fp in s.embedders.items()]
        lines.append(f"index    {s.index}")
        if s.graph:
            lines.append("graph    " + ", ".join(f"{rel} {n}" for rel, n in sorted(s.graph.items()) if n) or "no edges")
        lines += [f"note     {n}" for n in s.notes]
        return "\n".join(lines)

    _emit(stats, as_json, human)


@cli.command()
@_path
@click.argument("query")
@click.option("-k", "--k", "k", default=5, show_default=True, help="Number of hits.")
@click.option("--kind", "kinds", multiple=True, help="Only records of this kind (repeatable).")
@click.option("--session", "sessions", multiple=True, help="Only records of this session (repeatable).")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword", "topics"]), default=None,
              help="Ranking mode (default: the memory's config).")
@_json
@_errors
def search(path: str, query: str, k: int, kinds: tuple[str, ...], sessions: tuple[str, ...], mode: str | None,
           as_json: bool) -> None:
    """Print the K memories at PATH most relevant to QUERY (works while a writer runs)."""
    with Memory(path, read_only=True) as mem:
        hits = mem.search(query, k=k, kinds=list(kinds) or None, sessions=list(sessions) or None, mode=mode)

    def human(hs: Any) -> str:
        return "\n".join(f"{h.rank + 1:>3}. [{h.record.id}] d={h.distance:.3f} {h.record.kind}: "
                         f"{h.record.text[:100]!r}" for h in hs) or "(no hits)"

    _emit(hits, as_json, human)


@cli.command()
@_path
@click.argument("text")
@click.option("--kind", default="note", show_default=True, help="Record kind.")
@click.option("--session", default=None, help="Session name.")
@click.option("--metadata", default=None, help="Metadata as a JSON object.")
@_json
@_errors
def add(path: str, text: str, kind: str, session: str | None, metadata: str | None, as_json: bool) -> None:
    """Add TEXT to the memory at PATH (created if missing) and print its id."""
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
    _emit({"id": rid}, as_json, lambda d: str(d["id"]))


@cli.command(name="import")
@_path
@click.argument("file", type=_SafePath(dir_okay=False))
@click.option("--kind", default="note", show_default=True, help="Kind for lines that name none.")
@click.option("--session", default=None, help="Session name for every record.")
@_json
@_errors
def import_(path: str, file: str, kind: str, session: str | None, as_json: bool) -> None:
    """Add every record of FILE (.jsonl objects or one text per line) to the memory at PATH, all or nothing."""
    texts, kinds, metas = read_records(file, kind)
    with Memory(path) as mem:
        ids = mem.add_many(texts, kind=kinds, metadata=metas, session=session)
    _emit({"imported": len(ids), "ids": ids}, as_json, lambda d: f"imported {d['imported']} records")


@cli.command()
@_path
@click.option("--members", "show_members", is_flag=True, help="Include member record ids (JSON only).")
@_json
@_errors
def topics(path: str, show_members: bool, as_json: bool) -> None:
    """Print the topic tree of the memory at PATH (top level first; works while a writer runs)."""
    with Memory(path, read_only=True) as mem:
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

    _emit(nodes, as_json, human)


@cli.command()
@_path
@click.option("--reembed", is_flag=True, help="Re-run the embedders over every record first (after a model change).")
@_json
@_errors
def rebuild(path: str, reembed: bool, as_json: bool) -> None:
    """Refit whitening, index, topics and graph of the memory at PATH from its store."""
    with Memory(path, create=False, reembed=reembed) as mem:
        mem.rebuild(reembed=reembed)
        stats = mem.stats()
    _emit(stats.index, as_json, lambda i: f"rebuilt index: {i}")


@cli.command()
@_path
@click.argument("node")
@click.option("--rel", "rels", multiple=True, help="Follow only this edge type (repeatable).")
@click.option("--direction", type=click.Choice(["both", "out", "in"]), default="both", show_default=True)
@click.option("--depth", default=1, show_default=True, help="Steps from NODE.")
@click.option("--limit", default=50, show_default=True, help="Nodes shown at most.")
@_json
@_errors
def graph(path: str, node: str, rels: tuple[str, ...], direction: str, depth: int, limit: int, as_json: bool) -> None:
    """Show the knowledge graph around NODE (a memory id, or topic:ID, session:NAME, task:ID)."""
    start: int | str = int(node) if node.isdigit() else node
    with Memory(path, read_only=True) as mem:
        sub = mem.neighbours(start, list(rels) or None, direction=direction, depth=depth, limit=limit)

    def human(g: Any) -> str:
        lines = [f"{n.key:<24} {n.label:<8} {str(n.props.get('text') or n.props.get('label') or n.props.get('name', ''))[:80]!r}"
                 for n in g.nodes]
        lines += [f"  {e.src} -[{e.rel} {e.weight:.2f}]-> {e.dst}" for e in g.edges]
        return "\n".join(lines)

    _emit(sub, as_json, human)


@cli.group()
def export() -> None:
    """Copy a memory somewhere else (Neo4j)."""


@export.command(name="neo4j")
@_path
@click.option("--uri", default=None, help="bolt://host:7687 (default: SELFMEM_NEO4J_URI, then the config).")
@click.option("--user", default=None, help="Default: SELFMEM_NEO4J_USER, then the config.")
@click.option("--database", default=None, help="Default: SELFMEM_NEO4J_DATABASE, then the config.")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted export.")
@_json
@_errors
def export_neo4j(path: str, uri: str | None, user: str | None, database: str | None, restart: bool,
                 as_json: bool) -> None:
    """Copy the knowledge graph of the memory at PATH to Neo4j (idempotent; resumes after an interruption).

    The password is read from SELFMEM_NEO4J_PASSWORD (never from the command line).
    """
    with Memory(path, read_only=True) as mem:
        counts = mem.export_neo4j(uri, user, None, database, restart=restart)
    _emit(counts, as_json, lambda c: "exported: " + ", ".join(f"{k} {v}" for k, v in c.items()))


def main() -> None:
    """Entry point of the ``memctl`` console script."""
    cli()
