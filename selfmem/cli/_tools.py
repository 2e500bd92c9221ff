"""``memctl doctor``, ``memctl export`` and ``memctl map``: maintenance and pictures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import SafePath, emit, errors, human_bytes, json_opt, path_arg

__all__ = ["doctor", "export", "map_"]

EXIT_PROBLEMS = 3


@click.command()
@path_arg
@click.option("--repair", is_flag=True, help="Rebuild the parts found wrong (opens the memory for writing).")
@json_opt
@errors
def doctor(path: str, repair: bool, as_json: bool) -> None:
    """Check that the store, index, re-rank file, keywords, topics, graph and read view of PATH agree.

    Exit code 0 when all agree (or were repaired), 3 when problems remain. Run it on a memory that no
    writer holds (a writer reconciles its files itself).
    """
    from ..memory._doctor import doctor as run_doctor  # memory (DuckDB, FAISS) loads only when a command runs

    result = run_doctor(path, repair=repair)

    def human(c: Any) -> str:
        lines = [f"checked    {', '.join(c.checked)}"]
        lines += [f"problem    [{p.part}] {p.message}\n           fix: {p.fix}" for p in c.problems]
        if c.repaired:
            lines.append(f"repaired   {', '.join(c.repaired)}")
        lines += [f"remaining  [{p.part}] {p.message}" for p in c.remaining if c.repaired]
        lines.append("healthy" if c.healthy else f"{len(c.remaining)} problem(s)"
                     + ("" if repair else f"; memctl doctor {c.path} --repair rebuilds what it can"))
        return "\n".join(lines)

    emit(result, as_json, human)
    if not result.healthy:
        sys.exit(EXIT_PROBLEMS)


@click.command()
@path_arg
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "neo4j"]), default="jsonl",
              show_default=True, help="jsonl: records (memctl import reads it back); parquet: records and vectors; "
              "neo4j: the knowledge graph to a Neo4j server.")
@click.option("--out", type=SafePath(dir_okay=False), default=None,
              help="File to write (default: the memory's directory name + .jsonl/.parquet, here).")
@click.option("--uri", default=None, help="neo4j: bolt://host:7687 (default: SELFMEM_NEO4J_URI, then the config).")
@click.option("--user", default=None, help="neo4j: default SELFMEM_NEO4J_USER, then the config.")
@click.option("--database", default=None, help="neo4j: default SELFMEM_NEO4J_DATABASE, then the config.")
@click.option("--restart", is_flag=True, help="neo4j: start over instead of resuming an interrupted export.")
@json_opt
@errors
def export(path: str, fmt: str, out: str | None, uri: str | None, user: str | None, database: str | None,
           restart: bool, as_json: bool) -> None:
    """Write the memory at PATH to a file (jsonl, parquet) or copy its graph to Neo4j (works while a writer runs).

    For Neo4j the password is read from SELFMEM_NEO4J_PASSWORD (never from the command line); the export is
    idempotent and resumes after an interruption.
    """
    from ..memory import Memory

    with Memory(path, read_only=True) as mem:
        if fmt == "neo4j":
            counts = mem.export_neo4j(uri, user, None, database, restart=restart)
            emit(counts, as_json, lambda c: "exported: " + ", ".join(f"{k} {v}" for k, v in c.items()))
            return
        target = Path(out) if out else Path.cwd() / f"{Path(path).resolve().name}.{fmt}"
        n = mem.export(target, fmt)
    emit({"exported": n, "out": str(target), "format": fmt, "bytes": target.stat().st_size}, as_json,
         lambda d: f"exported {d['exported']} records to {d['out']} ({human_bytes(d['bytes'])})")


@click.command(name="map")
@path_arg
@click.option("--out", type=SafePath(dir_okay=False), default="map.html", show_default=True, help="HTML file to write.")
@click.option("--max-points", default=50_000, show_default=True, type=click.IntRange(1),
              help="Draw at most this many memories (a uniform sample above it).")
@click.option("--fit-sample", default=10_000, show_default=True, type=click.IntRange(10),
              help="Fit UMAP on at most this many points; the rest are transformed.")
@click.option("--seed", default=0, show_default=True, help="Sampling and UMAP seed.")
@json_opt
@errors
def map_(path: str, out: str, max_points: int, fit_sample: int, seed: int, as_json: bool) -> None:
    """Write a standalone HTML memory map of PATH: UMAP layout, colour = top-level topic, hover text, search box.

    The file opens in any browser without a server (works while a writer runs).
    """
    from ..viz import memory_map

    from ..memory import Memory

    with Memory(path, read_only=True) as mem:
        info = memory_map(mem, out, max_points=max_points, fit_sample=fit_sample, seed=seed)
    emit(info, as_json, lambda i: f"wrote {i.path} ({human_bytes(i.bytes)}): {i.drawn} of {i.total} memories drawn, "
                                  f"{i.topics} top-level topics, {i.method.upper()} fitted on {i.fitted_on}, "
                                  f"{i.seconds:.1f} s")


@click.command()
@click.argument("src", type=SafePath(exists=True, file_okay=False))
@click.argument("dst", type=SafePath(file_okay=False))
@click.option("--to", "store", default="duckdb", show_default=True,
              help="The copy's store: duckdb, or a postgresql:// URL (a password in it is used, never saved).")
@click.option("--schema", default="", help="The copy's PostgreSQL schema (default: from DST's name).")
@json_opt
@errors
def migrate(src: str, dst: str, store: str, schema: str, as_json: bool) -> None:
    """Copy the memory at SRC to a new memory at DST on another store (DuckDB <-> PostgreSQL), ids kept."""
    from ..memory._migrate import migrate as run

    emit(run(src, dst, store=store, schema=schema),
         as_json, lambda r: f"copied {r['records']} records from {r['src']} to {r['dst']} ({dst})")
