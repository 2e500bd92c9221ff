"""Progress you can see, noise you can't: our tqdm bars, other libraries kept quiet.

Our bars show for long work when stderr is a terminal (``progress=None``), always with
``progress=True`` and never with ``progress=False``. Other libraries' progress bars and info
logs (transformers' "Loading weights", huggingface_hub downloads, sentence-transformers
messages) are silenced around model loads by :func:`quiet_libraries`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["show_progress", "bar", "quiet_libraries"]

T = TypeVar("T")
_NOISY_LOGGERS = ("transformers", "sentence_transformers", "huggingface_hub", "accelerate", "torch", "faiss",
                  "numba", "umap", "pynndescent")


def show_progress(flag: bool | None, work: int = 0, threshold: int = 0) -> bool:
    """Whether to draw a bar: ``flag`` when given, else when ``work >= threshold`` and stderr is a TTY.

    >>> show_progress(False, 10**6), show_progress(True, 0)
    (False, True)
    """
    if flag is not None:
        return bool(flag)
    return work >= threshold and _stderr_is_tty()


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def bar(iterable: Iterable[T] | None = None, *, enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), disabled unless ``enabled``."""
    with warnings.catch_warnings():  # in a notebook without ipywidgets tqdm.auto warns and falls back to text bars
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, **kwargs)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence other libraries' progress bars and info logs (warnings and errors still show)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    levels = {}
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        levels[name] = logger.level
        logger.setLevel(max(logger.level, logging.WARNING))
    hf_logging: ModuleType | None = None
    try:
        if "transformers" not in sys.modules:  # importing it costs 0.8 s; imported later, it reads the
            raise ImportError                  # HF_HUB_DISABLE_PROGRESS_BARS set above and logs at WARNING
        from transformers.utils import logging as hf_module

        hf_logging = hf_module
        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
    except ImportError:
        hf_logging = None
    try:
        yield
    finally:
        if hf_logging is not None:
            hf_logging.set_verbosity(verbosity)
            if was_enabled:
                hf_logging.enable_progress_bar()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
