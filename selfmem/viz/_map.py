"""The memory map: memories laid out in 2-D by UMAP, coloured by top-level topic, as one HTML file.

The file opens in any browser without a server (Plotly's JavaScript is embedded). Points are drawn
with WebGL (``scattergl``), so tens of thousands stay responsive; above ``max_points`` a uniform
sample is drawn and the title says how many. UMAP is fitted on at most ``fit_sample`` of the drawn
points and the others are placed with ``transform``, which keeps a 100k-memory map within minutes
on two cores. A search box above the plot highlights the drawn memories whose text contains what is
typed (the only hand-written JavaScript: a few lines calling ``Plotly.restyle``). The legend's "entities"
entry shows the graph's entity layer: the names and words that link memories, each joined to its memories.
"""

from __future__ import annotations

import html
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import DependencyError, InvalidInputError, StorageError
from .._files import atomic_write, check_output
from .._progress import bar, quiet_libraries, show_progress
from .._types import Points
from ..graph._entities import extract_entities, max_df

__all__ = ["memory_map", "map_figure", "layout", "MapInfo"]

HOVER_CHARS = 300
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
            "#756bb1", "#636363")


@dataclass(frozen=True)
class MapInfo:
    """What :func:`memory_map` wrote.

    Attributes
    ----------
    path : str
        The HTML file.
    drawn : int
        Memories drawn.
    total : int
        Memories in the memory.
    fitted_on : int
        Points UMAP was fitted on (the rest transformed).
    topics : int
        Top-level topics coloured (plus one colour for memories without a topic).
    bytes : int
        Size of the file.
    seconds : float
        Time taken.
    method : str
        ``"umap"``, or ``"pca"`` for memories too small for UMAP (fewer than 10 memories).
    """

    path: str
    drawn: int
    total: int
    fitted_on: int
    topics: int
    bytes: int
    seconds: float
    method: str


def layout(vectors: np.ndarray, *, fit_sample: int = 10_000, seed: int = 0, n_neighbors: int = 15,
           progress: bool = False) -> tuple[np.ndarray, int, str]:
    """2-D coordinates of ``vectors`` (n, dim): UMAP fitted on a sample, the rest transformed.

    Returns
    -------
    xy : ndarray, shape (n, 2) float32
    fitted_on : int
    method : str
        ``"umap"`` or ``"pca"`` (fewer than 10 points).
    """
    n = len(vectors)
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if n < 10:
        if n == 0:
            return np.zeros((0, 2), np.float32), 0, "pca"
        c = x - x.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        xy = c @ vt[:2].T if vt.shape[0] >= 2 else np.c_[c @ vt[:1].T, np.zeros(n)]
        return np.asarray(xy, np.float32), n, "pca"
    try:
        with quiet_libraries(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DependencyError("the memory map needs umap-learn: pip install umap-learn") from exc
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, size=min(n, fit_sample), replace=False))
    rest = np.setdiff1d(np.arange(n), fit_rows)
    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(fit_rows) - 1), min_dist=0.1,
                        metric="cosine", random_state=seed, low_memory=True)
    xy = np.zeros((n, 2), np.float32)
    with quiet_libraries(), warnings.catch_warnings(), bar(total=n, enabled=progress, desc="UMAP layout",
                                                            unit="memories") as shown:
        warnings.simplefilter("ignore")
        xy[fit_rows] = reducer.fit_transform(x[fit_rows])
        shown.update(len(fit_rows))
        for start in range(0, len(rest), 20_000):
            rows = rest[start:start + 20_000]
            xy[rows] = reducer.transform(x[rows])
            shown.update(len(rows))
    return xy, len(fit_rows), "umap"


def _hover(points: Points, i: int, label: str) -> str:
    text = points.texts[i]
    text = text if len(text) <= HOVER_CHARS else text[:HOVER_CHARS] + "…"
    return (f"<b>#{int(points.ids[i])}</b> {html.escape(points.kinds[i])} · session "
            f"{html.escape(points.sessions[i] or '(none)')}<br>topic: {html.escape(label)}<br>"
            + "<br>".join(html.escape(text[j:j + 80]) for j in range(0, len(text), 80)))


_SEARCH_JS = """
(function () {
  var gd = document.getElementById('{div}');
  var box = document.createElement('div');
  box.style = 'font: 14px sans-serif; margin: 6px 12px';
  box.innerHTML = '<input id="selfmem-search" type="search" placeholder="search memories (text contains)" ' +
      'style="width: 28em; padding: 4px"> <span id="selfmem-count"></span>';
  gd.parentNode.insertBefore(box, gd);
  var input = document.getElementById('selfmem-search'), count = document.getElementById('selfmem-count');
  var base = gd.data.map(function (t) { return t.marker ? t.marker.size : 0; });
  function apply() {
    var q = input.value.trim().toLowerCase(), hits = 0, drawn = 0;
    var sizes = [], opac = [], idx = [];
    gd.data.forEach(function (t, i) {
      if (t.meta !== 'points') { return; }
      idx.push(i);
      var s = [], o = [];
      t.customdata.forEach(function (txt) {
        drawn += 1;
        var m = q && txt.indexOf(q) >= 0;
        if (m) { hits += 1; }
        s.push(m ? base[i] * 2.5 : base[i]);
        o.push(!q || m ? 0.85 : 0.08);
      });
      sizes.push(s); opac.push(o);
    });
    Plotly.restyle(gd, {'marker.size': sizes, 'marker.opacity': opac}, idx);
    count.textContent = q ? hits + ' of ' + drawn + ' drawn memories match' : drawn + ' memories drawn';
    gd.setAttribute('data-matches', q ? hits : -1);
  }
  input.addEventListener('input', apply);
  apply();
})();
"""


def _check(max_points: Any, fit_sample: Any, title: Any) -> None:
    for name, value, low in (("max_points", max_points, 1), ("fit_sample", fit_sample, 10)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
    if title is not None and not isinstance(title, str):
        raise InvalidInputError("title must be a string")


def map_figure(memory: Any, *, max_points: int = 50_000, fit_sample: int = 10_000, seed: int = 0,
               progress: bool | None = None, title: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The memory map as a Plotly figure (for notebooks), and what it shows.

    Parameters are those of :func:`memory_map`. Returns ``(figure, info)`` with ``info`` holding
    ``drawn``, ``total``, ``fitted_on``, ``topics`` and ``method``.
    """
    _check(max_points, fit_sample, title)
    try:
        import plotly.graph_objects as go
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DependencyError("the memory map needs plotly: pip install plotly") from exc
    points = memory.points(max_points, seed=seed)
    show = show_progress(progress, len(points.ids), 512)
    xy, fitted_on, method = layout(points.vectors, fit_sample=fit_sample, seed=seed, progress=show)
    labels = {t.id: t.label for t in memory.topics()}
    tops = sorted(set(points.tops.tolist()), key=lambda t: (t < 0, -int((points.tops == t).sum())))
    fig = go.Figure()
    annotations = []
    for c, top in enumerate(tops):
        rows = np.flatnonzero(points.tops == top)
        label = labels.get(int(top), "(no topic yet)") if top >= 0 else "(no topic yet)"
        colour = _PALETTE[c % len(_PALETTE)] if top >= 0 else "#b0b0b0"
        leaf_labels = [labels.get(int(points.topics[i]), label) for i in rows]
        fig.add_trace(go.Scattergl(
            x=xy[rows, 0], y=xy[rows, 1], mode="markers", name=f"{label[:40]} ({len(rows)})", meta="points",
            marker={"size": 5, "color": colour, "opacity": 0.85},
            customdata=[points.texts[i].lower() for i in rows],
            hovertext=[_hover(points, int(i), leaf) for i, leaf in zip(rows, leaf_labels)], hoverinfo="text"))
        if top >= 0:
            cx, cy = np.median(xy[rows], axis=0)
            annotations.append({"x": float(cx), "y": float(cy), "text": html.escape(label[:40]), "showarrow": False,
                                "font": {"size": 12, "color": "#222"}, "bgcolor": "rgba(255,255,255,0.6)"})
    _entity_traces(fig, go, points.texts, xy)
    n_topics = sum(t >= 0 for t in tops)
    heading = title or (f"selfmem memory map: {html.escape(str(getattr(memory, 'directory', '')))} — "
                        f"{len(points.ids)} of {points.total} memories drawn, {n_topics} top-level topics "
                        f"({method.upper()})")
    fig.update_layout(title={"text": heading, "font": {"size": 15}}, template="plotly_white", dragmode="pan",
                      hovermode="closest", annotations=annotations[:60], legend={"itemsizing": "constant"},
                      xaxis={"visible": False}, yaxis={"visible": False}, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      height=800)
    return fig, {"drawn": len(points.ids), "total": points.total, "fitted_on": fitted_on, "topics": n_topics,
                 "method": method}


MAP_ENTITIES = 40
"""Entities the map can show (hidden until their legend entry is clicked)."""


def _entity_traces(fig: Any, go: Any, texts: Sequence[str], xy: np.ndarray) -> None:
    """The entity layer as a toggle: the :data:`MAP_ENTITIES` entities mentioned by the most drawn memories
    (at least 2, at most :func:`~selfmem.graph._entities.max_df` of them, the walk's bound), each a labelled point at the median of its memories with a line to
    each of them, in one legend group that starts hidden. The entities are those of the graph's MENTIONS
    edges (the same extraction, run on the drawn texts: no store query)."""
    members: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        for e in extract_entities(text):
            members.setdefault(e, []).append(i)
    cap = max_df(len(texts))
    shown = sorted((e for e, rows in members.items() if 2 <= len(rows) <= cap), key=lambda e: (-len(members[e]), e))
    if not shown:
        return
    shown = shown[:MAP_ENTITIES]
    centres = np.array([np.median(xy[members[e]], axis=0) for e in shown])
    lx: list[float | None] = []
    ly: list[float | None] = []
    for e, (cx, cy) in zip(shown, centres):
        for i in members[e]:
            lx += [float(cx), float(xy[i, 0]), None]
            ly += [float(cy), float(xy[i, 1]), None]
    fig.add_trace(go.Scattergl(x=lx, y=ly, mode="lines", line={"width": 0.6, "color": "rgba(60,60,60,0.35)"},
                               hoverinfo="skip", legendgroup="entities", showlegend=False, visible="legendonly"))
    fig.add_trace(go.Scatter(
        x=centres[:, 0], y=centres[:, 1], mode="markers+text", text=[html.escape(e) for e in shown],
        textposition="top center", name=f"entities ({len(shown)}): the names and words memories share",
        marker={"size": 9, "symbol": "diamond", "color": "#111"}, legendgroup="entities", visible="legendonly",
        hovertext=[f"<b>{html.escape(e)}</b>: mentioned by {len(members[e])} drawn memories" for e in shown],
        hoverinfo="text"))


def memory_map(memory: Any, out: str | os.PathLike[str], *, max_points: int = 50_000, fit_sample: int = 10_000,
               seed: int = 0, progress: bool | None = None, title: str | None = None) -> MapInfo:
    """Write a standalone HTML memory map of ``memory`` to ``out``.

    Parameters
    ----------
    memory : Memory
        An open memory (read-only is fine).
    out : str or path-like
        The ``.html`` file to write (replaced atomically); a path inside a memory directory is refused.
    max_points : int
        Draw at most this many memories (a uniform sample above it; the title says how many).
    fit_sample : int
        Fit UMAP on at most this many of the drawn points and transform the rest.
    seed : int
        Sampling and UMAP seed (the same memory gives the same map).
    progress : bool, optional
        Show a bar (default: on a terminal, for 512 memories or more).
    title : str, optional
        Heading of the page (default: the memory's directory and counts).

    Returns
    -------
    MapInfo
    """
    t0 = time.perf_counter()
    _check(max_points, fit_sample, title)
    directory = getattr(memory, "directory", None)
    path = check_output(out, protect=(directory,) if isinstance(directory, Path) else ())
    fig, info = map_figure(memory, max_points=max_points, fit_sample=fit_sample, seed=seed, progress=progress,
                           title=title)
    div = "selfmem-map"
    page = fig.to_html(include_plotlyjs=True, full_html=True, div_id=div, post_script=_SEARCH_JS.replace("{div}", div),
                       config={"scrollZoom": True, "displaylogo": False, "responsive": True})
    page = page.replace("<head>", "<head><meta charset=\"utf-8\"><title>selfmem memory map</title>", 1)
    try:
        atomic_write(path, page)
    except OSError as exc:
        raise StorageError(f"could not write {path}: {exc}") from exc
    return MapInfo(path=str(path), bytes=path.stat().st_size, seconds=round(time.perf_counter() - t0, 2), **info)
