"""What a customer's comment is about, and how they feel about it.

`analyse` reads a survey comment or a give_feedback message and returns its themes (物流, 质量,
价格, 客服态度, 售后, 使用体验, 退换货: the keys of themes.yml, in that order) and a polarity.
The text is folded (actions.rules._text: full-width to ASCII, lower case) and converted to
Simplified Chinese with OpenCC, segmented by jieba inside a blank spaCy "zh" pipeline, then:

* themes: a spaCy PhraseMatcher over themes.yml's phrases plus a Matcher for its token patterns;
* polarity: the same for polarity.yml's positive / negative / neutral words and patterns, then
  each match counts +1 or -1, times the nearest intensifier (很, 非常, 太) or diminisher (有点)
  before it, flipped by a negator (不, 没, 没有, 别, 无) within two tokens, halved before a
  contrast word (但是, 就是, 不过) and 1.5x after it. `score` is tanh(sum / 2), in [-1, 1];
  |score| < 0.1 is neutral.

It is a lexicon, not a model: docs/feedback.md has the measured precision and recall, and how to
add a theme. The spaCy pipeline is built on the first call (about two seconds), not at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, cast

from actions.feedback import _polarity
from actions.feedback._lexicon import load_themes
from actions.feedback._pipeline import pipeline
from actions.rules._text import fold

if TYPE_CHECKING:
    from opencc import OpenCC

Polarity = Literal["positive", "negative", "neutral"]
POLARITIES: tuple[Polarity, ...] = ("positive", "negative", "neutral")


@dataclass(frozen=True)
class Analysis:
    themes: tuple[str, ...]  # in `themes()` order
    polarity: Polarity
    score: float  # -1.0 (very negative) to 1.0 (very positive)


NOTHING = Analysis((), "neutral", 0.0)


def analyse(text: str) -> Analysis:
    """The themes and polarity of a comment, for the survey record and the feedback report."""
    normalised = normalise(text)
    if not normalised:
        return NOTHING
    nlp = pipeline()
    doc = nlp.nlp(normalised)
    total = _polarity.sentiment_total(doc, nlp.sentiment_spans(doc), nlp.polarity)
    value = _polarity.score(total)
    return Analysis(nlp.themes(doc), cast(Polarity, _polarity.polarity(value)), value)


@lru_cache(maxsize=1)
def themes() -> tuple[str, ...]:
    """Every theme `analyse` can return, in order (the keys of themes.yml)."""
    return tuple(theme.name for theme in load_themes())


def normalise(text: str) -> str:
    """Folded, Simplified, stripped: what the lexicons are matched against."""
    return str(_to_simplified().convert(fold(text))).strip()


@lru_cache(maxsize=1)
def _to_simplified() -> OpenCC:
    from opencc import OpenCC

    return OpenCC("t2s")
