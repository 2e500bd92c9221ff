"""Names for torch's objects in annotations (tensors, dtypes, modules and the tokenizers around them).

torch is imported lazily, inside the functions that run it, and this package is not type-checked against
it: to mypy its objects are ``Any``. Naming them here keeps that boundary in one place and lets a signature
say what it takes.
"""

from __future__ import annotations

from typing import Any, TypeAlias

__all__ = ["Tensor", "Dtype", "Module", "ModelKey"]

Tensor: TypeAlias = Any
"""A ``torch.Tensor``."""

Dtype: TypeAlias = Any
"""A ``torch.dtype``."""

Module: TypeAlias = Any
"""A ``torch.nn.Module`` (a transformers model, a layer), or a transformers tokenizer."""

ModelKey: TypeAlias = tuple[str | int | bool, ...]
"""What a process-wide model cache entry is keyed by (kind, weights, device, dtype, layers)."""
