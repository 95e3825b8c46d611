"""Adding up the sentiment spans of a comment: modifiers, negation and contrast."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from actions.feedback._lexicon import PolarityRules

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

SIGNS = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
BEFORE_CONTRAST, AFTER_CONTRAST = 0.5, 1.5
WEAKENED = 0.7  # an intensifier under a negator: 不是很满意, 不太好
NEUTRAL_BAND = 0.1  # |score| below this is neutral


def sentiment_total(doc: Doc, spans: list[Span], rules: PolarityRules) -> float:
    """The weighted sum of the sentiment spans; positive above zero."""
    spans = [span for span in spans if not _acts_as_modifier(span, spans, rules)]
    covered = {i for span in spans for i in range(span.start, span.end)}
    contrast = max((t.i for t in doc if t.lower_ in rules.contrast), default=-1)
    total = 0.0
    for span in spans:
        weight = SIGNS[span.label_] * _modifier(doc, span, covered, rules)
        weight *= _trailing(doc, span, rules)
        if contrast >= 0:
            weight *= AFTER_CONTRAST if span.start > contrast else BEFORE_CONTRAST
        total += weight
    return total


def score(total: float) -> float:
    """A total squashed into [-1, 1]."""
    return round(math.tanh(total / 2), 3)


def polarity(value: float) -> str:
    if value >= NEUTRAL_BAND:
        return "positive"
    return "negative" if value <= -NEUTRAL_BAND else "neutral"


def _acts_as_modifier(span: Span, spans: list[Span], rules: PolarityRules) -> bool:
    """好 in 好慢 / 好贵 is "very", not "good": a modifier word right before another span."""
    return span.text in rules.modifiers and any(other.start == span.end for other in spans)


def _modifier(doc: Doc, span: Span, covered: set[int], rules: PolarityRules) -> float:
    """The nearest modifier's factor, negated by a negator within the window before the span.

    The look-back stops at punctuation, at another sentiment span, and after
    `negation_window` tokens that are neither modifiers nor negators.
    """
    factor: float | None = None
    negated, counted = False, 0
    for i in range(span.start - 1, -1, -1):
        word = doc[i].lower_
        if doc[i].is_punct or i in covered:
            break
        if word in rules.negators:
            negated = not negated
            if factor is not None and factor > 1:
                factor = WEAKENED  # 不是很满意: "not very" is weaker, not stronger
        elif word in rules.modifiers:
            factor = rules.modifiers[word] if factor is None else factor
        else:
            counted += 1
            if counted > rules.negation_window:
                break
    value = 1.0 if factor is None else factor
    return -value if negated else value


def _trailing(doc: Doc, span: Span, rules: PolarityRules) -> float:
    """慢了点, 贵了一点: a diminisher after the word, with an optional 了 in between."""
    following = [t.lower_ for t in doc[span.end : span.end + 2]]
    if following[:1] == ["了"]:
        following = following[1:]
    return rules.trailing.get(following[0], 1.0) if following else 1.0
