"""``memctl inspect``: the overview of a memory, one record, one topic, or its sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .._errors import InvalidInputError
from ._common import emit, errors, human_bytes, json_opt, path_arg
from ._serve import open_memory, url_opt

if TYPE_CHECKING:  # the memory (DuckDB, FAISS) loads when a command runs: memctl --url never needs it
    from ..memory import Memory

__all__ = ["inspect"]


def _more(items: list[str], top: int, total: int, hint: str) -> str:
    shown = ", ".join(items[:top])
    return shown + (f", … and {total - top} more ({hint})" if total > top else "")


def _overview(s: Any, top: int) -> str:
    kinds = sorted(s.kinds.items(), key=lambda kv: -kv[1])
    sessions = [f"{k or '(none)'} {n}" for k, n in s.sessions.items()]
    lines = [f"memory     {s.path}", f"records    {s.records}",
             f"  kinds    {_more([f'{k} {n}' for k, n in kinds], top, len(kinds), 'all with --json')}",
             f"  sessions {len(s.sessions)}: {_more(sessions, top, len(sessions), f'memctl inspect {s.path} sessions')}"]
    for role, fp in s.embedders.items():
        lines.append(f"embedder   {role}: {fp.get('name')} dim {fp.get('dim')} {fp.get('revision')}"
                     + (f" layer {fp['layer']}" if "layer" in fp else ""))
    ix = s.index
    extra = "".join(f" {k} {ix[k]}" for k in ("nlist", "nprobe", "rerank", "n_trained") if k in ix)
    lines.append(f"index      {ix['kind']}, {ix['size']} vectors of dim {ix['dim']}, {ix['mode']} view{extra}")
    if s.topic_levels:
        levels = ", ".join(f"level {lv}: {n}" for lv, n in sorted(s.topic_levels.items()))
        lines.append(f"topics     {levels}" + (f" ({s.provisional_topics} provisional)" if s.provisional_topics else ""))
    else:
        lines.append("topics     none yet")
    if s.graph:
        lines.append(f"graph      {sum(s.graph.values())} edges: "
                     + ", ".join(f"{rel} {n}" for rel, n in sorted(s.graph.items(), key=lambda kv: -kv[1]) if n))
    lines.append(f"disk       {human_bytes(sum(s.disk.values()))}: "
                 + ", ".join(f"{name} {human_bytes(n)}" for name, n in list(s.disk.items())[:top]))
    if s.last_rebuild:
        r = s.last_rebuild
        lines.append(f"rebuilt    {r['at']} at {r['records']} records; since: +{r['added_since']} "
                     f"-{r['deleted_since']}")
    else:
        lines.append(f"rebuilt    never (memctl rebuild {s.path} refits everything)")
    if s.view:
        v = s.view
        lines.append(f"read view  published {v['published_at']} ({v['age_s']:.0f} s ago), {v['records']} records, "
                     f"{v['segments']} segments")
    if s.health:
        lines += [f"warning    [{f.part}] {f.message}\n           fix: {f.fix}" for f in s.health]
    else:
        lines.append("health     ok")
    lines += [f"note       {n}" for n in s.notes]
    return "\n".join(lines)


def _record(mem: Memory, rid: int) -> dict[str, Any]:
    rec = mem.get(rid)
    topics = {t.id: t for t in mem.topics()}
    leaf = mem.neighbours(rid, ["IN_TOPIC"], direction="out", limit=5)
    tid = next((int(n.key.split(":", 1)[1]) for n in leaf.nodes if n.label == "Topic"), None)
    from ..clustering._tree import lineage  # numpy: loaded only for this subcommand
    up = lineage({t.id: t.parent for t in topics.values()}, tid) if tid is not None else []
    path = [{"id": t, "label": topics[t].label} for t in up]
    near = mem.neighbours(rid, ["FOLLOWS", "SIMILAR_TO", "DERIVED_FROM", "SOLVES", "ABOUT"], limit=15)
    return {"record": rec, "topic_path": path, "edges": near.edges,
            "neighbours": [n for n in near.nodes if n.key != f"memory:{rid}"]}


def _record_text(d: dict[str, Any]) -> str:
    r = d["record"]
    lines = [f"record     {r.id} ({r.kind}), session {r.session or '(none)'}, {r.created_at.isoformat(timespec='seconds')}",
             f"text       {r.text}", f"metadata   {r.metadata}",
             f"parents    {list(r.parents) or 'none'}", f"used       {r.use_count} times, importance {r.importance}",
             "topic      " + (" > ".join(f"[{t['id']}] {t['label']}" for t in d["topic_path"]) or "none yet")]
    for e in d["edges"]:
        lines.append(f"  {e.src} -[{e.rel} {e.weight:.2f}]-> {e.dst}")
    for n in d["neighbours"]:
        text = n.props.get("text") or n.props.get("label") or n.props.get("name", "")
        lines.append(f"  {n.key:<20} {str(text)[:90]!r}")
    return "\n".join(lines)


def _topic(mem: Memory, tid: int, samples: int) -> dict[str, Any]:
    t = mem.topic(tid)
    nodes = {x.id: x for x in mem.topics()}
    members = [mem.get(i) for i in t.members[:samples]]
    return {"topic": {**{k: getattr(t, k) for k in ("id", "level", "parent", "size", "label", "keywords",
                                                    "provisional")}, "members": len(t.members)},
            "subtopics": [{"id": c, "label": nodes[c].label, "size": nodes[c].size} for c in t.children if c in nodes],
            "samples": [{"id": r.id, "kind": r.kind, "text": r.text[:200]} for r in members]}


def _topic_text(d: dict[str, Any]) -> str:
    t = d["topic"]
    lines = [f"topic      [{t['id']}] {t['label']}" + (" (provisional)" if t["provisional"] else ""),
             f"level      {t['level']}, parent {t['parent']}", f"size       {t['size']} memories",
             f"keywords   {', '.join(t['keywords'][:12])}"]
    lines += [f"subtopic   [{c['id']}] {c['size']:>6}  {c['label']}" for c in d["subtopics"]]
    lines += [f"sample     #{s['id']} {s['kind']}: {s['text'][:100]!r}" for s in d["samples"]]
    return "\n".join(lines)


def _sessions_text(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'session':<24} {'records':>8}  {'first':<25} {'last':<25} kinds"]
    lines += [f"{(r['session'] or '(none)')[:24]:<24} {r['records']:>8}  {r['first']:<25} {r['last']:<25} "
              f"{', '.join(r['kinds'])}" for r in rows]
    return "\n".join(lines)


def _int(value: str | None, what: str) -> int:
    if value is None or not value.lstrip("-").isdigit():
        raise InvalidInputError(f"give the {what} id as a number, e.g. memctl inspect PATH {what} 3")
    return int(value)


@click.command()
@path_arg
@click.argument("what", required=False, type=click.Choice(["record", "topic", "sessions"]))
@click.argument("ident", required=False, metavar="[ID]")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1), help="List at most this many "
              "kinds, sessions and files (the rest are counted).")
@click.option("--samples", default=5, show_default=True, type=click.IntRange(0), help="Sample members of a topic.")
@url_opt
@json_opt
@errors
def inspect(path: str, what: str | None, ident: str | None, top: int, samples: int, url: str | None,
            as_json: bool) -> None:
    """Show the memory at PATH (works while a writer runs; nothing is copied).

    \b
    memctl inspect PATH              counts, embedders, index, topics, graph, disk, last rebuild, health
    memctl inspect PATH record ID    text, metadata, topic path, parents, graph neighbours
    memctl inspect PATH topic ID     label, keywords, size, subtopics, sample members
    memctl inspect PATH sessions     every session in natural order with counts, times and kinds
    """
    if what in (None, "sessions") and ident is not None:
        raise click.UsageError(f"unexpected argument {ident!r}")
    with open_memory(path, url) as mem:
        if what is None:
            emit(mem.stats(), as_json, lambda s: _overview(s, top))
        elif what == "record":
            emit(_record(mem, _int(ident, "record")), as_json, _record_text)
        elif what == "topic":
            emit(_topic(mem, _int(ident, "topic"), samples), as_json, _topic_text)
        else:
            emit(mem.sessions(), as_json, _sessions_text)
