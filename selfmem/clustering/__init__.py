"""Topic discovery: reduction, Dirichlet-process (or HDBSCAN) topics, the topic tree and labels.

Private modules: ``_dp`` (the fitted topic model and online Chinese-restaurant growth), ``_tree``
(super-topic levels and c-TF-IDF labels), ``_topics`` (a memory's topic state). ``Memory`` uses
them through its topic part; results reach users as :class:`selfmem.Topic`.
"""

__all__: list[str] = []
