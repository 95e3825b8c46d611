"""The feedback lexicons, read from themes.yml and polarity.yml (no spaCy here)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

THEMES_FILE = Path(__file__).with_name("themes.yml")
POLARITY_FILE = Path(__file__).with_name("polarity.yml")

Pattern = list[dict[str, Any]]  # a spaCy Matcher token pattern


@dataclass(frozen=True)
class ThemeRules:
    name: str
    phrases: tuple[str, ...]
    patterns: tuple[Pattern, ...] = ()


@dataclass(frozen=True)
class PolarityRules:
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    neutral: tuple[str, ...]
    negators: frozenset[str]
    negation_window: int
    modifiers: dict[str, float]  # intensifiers (> 1) and diminishers (< 1), before a word
    trailing: dict[str, float]  # diminishers after a word: 慢了点
    contrast: frozenset[str]
    positive_patterns: tuple[Pattern, ...] = ()
    negative_patterns: tuple[Pattern, ...] = ()


def load_themes(path: Path = THEMES_FILE) -> tuple[ThemeRules, ...]:
    """The themes in file order; the order of `Analysis.themes`."""
    data = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    return tuple(_theme(str(name), _mapping(rules, str(name))) for name, rules in data.items())


def load_polarity(path: Path = POLARITY_FILE) -> PolarityRules:
    data = _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    patterns = _mapping(data.get("patterns") or {}, "patterns")
    return PolarityRules(
        positive=_words(data, "positive"),
        negative=_words(data, "negative"),
        neutral=_words(data, "neutral"),
        negators=frozenset(_words(data, "negators")),
        negation_window=int(data.get("negation_window", 2)),
        modifiers={**_weights(data, "intensifiers"), **_weights(data, "diminishers")},
        trailing=_weights(data, "trailing_diminishers"),
        contrast=frozenset(_words(data, "contrast")),
        positive_patterns=tuple(patterns.get("positive") or ()),
        negative_patterns=tuple(patterns.get("negative") or ()),
    )


def lexicon_words(themes: tuple[ThemeRules, ...], polarity: PolarityRules) -> frozenset[str]:
    """Every word the rules name: what jieba must keep whole and the splitter may cut out."""
    words = {phrase for theme in themes for phrase in theme.phrases}
    words |= {*polarity.positive, *polarity.negative, *polarity.neutral, *polarity.negators}
    words |= {*polarity.modifiers, *polarity.trailing, *polarity.contrast}
    patterns = [p for theme in themes for p in theme.patterns]
    patterns += [*polarity.positive_patterns, *polarity.negative_patterns]
    words |= {word for pattern in patterns for word in _pattern_words(pattern)}
    return frozenset(words)


def _theme(name: str, rules: dict[str, Any]) -> ThemeRules:
    phrases = _words(rules, "phrases")
    patterns = tuple(rules.get("patterns") or ())
    if not phrases and not patterns:
        raise ValueError(f"theme {name!r} has neither phrases nor patterns")
    return ThemeRules(name, phrases, patterns)


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _words(data: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(word).lower() for word in data.get(key) or ())


def _weights(data: dict[str, Any], key: str) -> dict[str, float]:
    return {str(word).lower(): float(weight) for word, weight in (data.get(key) or {}).items()}


def _pattern_words(pattern: Pattern) -> Iterator[str]:
    """The literal words of a token pattern: {LOWER: 描述} and {LOWER: {IN: [大, 高]}}."""
    for token in pattern:
        value = token.get("LOWER")
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from (str(word) for word in value.get("IN", ()))
