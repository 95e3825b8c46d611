"""How angry a complaint is, and the ticket priority that follows.

`complaint_sentiment` adds up the weights of the lexicon entries present in the text (each entry
counts once, however often it is repeated; an entry inside another, 太 in 太差, adds to it) and
returns the negated sum, capped at -1.0. It is a triage signal for routing, not a model: 0.0 is
"no anger words found".

`complaint_priority`, first matching row wins (returns one of crm_store's PRIORITIES):

| condition                                                          | priority |
| ------------------------------------------------------------------ | -------- |
| threat to go outside: 12315, 消协, 曝光, 媒体, 记者, 律师, 起诉... | urgent   |
| 钻石 and strong anger (sentiment <= STRONG_ANGER)                  | urgent   |
| 金卡 or 钻石                                                       | high     |
| strong anger                                                       | high     |
| anything else                                                      | normal   |

A complaint is never "low". The threat is a separate flag (`mentions_external_threat`) rather
than folded into the score, so that a furious 普通 customer is not mistaken for one who is
about to call 12315.
"""

from __future__ import annotations

import re

from actions.rules._text import contains_any, fold

STRONG_ANGER = -0.6

# The consumer hotline 12315 and "3.15" day, but not 1315元 or an order number.
_HOTLINE = re.compile(r"(?<!\d)(?:12)?315(?!\d)")
# Going to a regulator, the media or court: a reputational risk whatever the tier.
EXTERNAL_THREATS = (
    "消协",
    "消费者协会",
    "工商",
    "市场监管",
    "曝光",
    "媒体",
    "记者",
    "律师",
    "起诉",
    "法院",
    "报警",
)

# (weight, words); intensity markers are counted like words.
_LEXICON: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.5, ("欺诈", "黑心", "气死", "忍无可忍", "受够", "再也不", "滚")),
    (0.5, EXTERNAL_THREATS),
    (0.4, ("垃圾", "骗", "坑人", "坑爹", "恶心", "退钱", "太差", "差劲", "离谱", "烂透")),
    (0.3, ("失望", "无语", "生气", "愤怒", "火大", "差评", "不满", "糟糕", "什么玩意", "有病")),
    (0.2, ("投诉", "很差", "太慢", "没人管", "没人理", "敷衍", "态度差", "态度恶劣")),
    (0.2, ("!!!", "???", "!?", "?!")),
    (0.1, ("太", "非常", "特别", "极其", "简直", "到底", "!!", "??")),
)


def complaint_sentiment(text: str) -> float:
    """From -1.0 (furious) to 0.0 (no anger words found)."""
    folded = fold(text)
    score = sum(weight for weight, words in _LEXICON for word in words if word in folded)
    score += 0.5 if _HOTLINE.search(folded) else 0.0
    return 0.0 - min(1.0, round(score, 2))  # 0.0 - x: never -0.0


def mentions_external_threat(text: str) -> bool:
    folded = fold(text)
    return bool(_HOTLINE.search(folded)) or contains_any(folded, EXTERNAL_THREATS)


def complaint_priority(tier: str, sentiment: float, *, threat: bool = False) -> str:
    """The ticket priority for a complaint; see the table in the module docstring."""
    angry = sentiment <= STRONG_ANGER
    if threat or (tier == "钻石" and angry):
        return "urgent"
    if tier in ("金卡", "钻石") or angry:
        return "high"
    return "normal"
