"""Survey answers in the customer's words: a CSAT (1-5) or NPS (0-10) score, a skip, or "ask again".

`parse_csat` and `parse_nps` return a `ScoreReading`; the survey form asks again on
"out_of_range" and "unclear", and ends the survey (stored as declined) on "skip". The text is
folded first (full-width to ASCII, Traditional to Simplified, lower case), then, first match wins:

1. An explicit number. Arabic or Chinese numerals with a score unit (4分, 打个三分, 五星, 4颗星,
   5份 - a common typo for 分), a fraction on the question's scale (4/5, 8/10, 五分之四), a bare
   number (4, 9吧, 给五), 满分 (the scale's top) or, for CSAT only, star symbols (★★★★, ⭐⭐⭐).
   A number with a unit wins over a bare one ("等了3天，2分" is 2); a scale mention is ignored
   ("满分10分我给8分" is 8). Two different numbers ("4-5分", "8、9分", "★★★ 5分") or a fraction
   of a point ("4.5", "7.5") are "unclear": the form asks again rather than rounding, because
   the buttons offer whole numbers and a second question costs one turn. A whole number
   outside the scale ("6", "0分", "十分" for CSAT; "11", "一百分" for NPS) is "out_of_range",
   with the number read in `score` so that the reply can quote it.
   Numerals that are words, not scores, are ignored: 十分满意 (very satisfied), 一般, 百分百,
   十分钟, 一星期, 3天.
2. A skip word (`SKIP_WORDS`: 跳过, 不想答, 算了, 下次吧, stop, skip...): "skip". A number given
   alongside still counts ("算了，3分吧" is 3); a word reading does not ("可以跳过吗" is a skip).
3. CSAT only, a satisfaction word (`CSAT_WORDS`): 非常满意 5, 满意/挺好/不错 4, 一般/还行/凑合 3,
   不满意/不太满意 2, 非常不满意/很差/垃圾 1. Longer entries are matched first, so 不满意 is never
   read as 满意 and 非常不满意 never as 不满意. Several words on the same side of 3 take the most
   extreme ("挺好的，非常满意" is 5); words on both sides ("满意但是很差") are "unclear".
   NPS has no word reading: "非常愿意推荐" does not say whether that is a 9 or a 10, so it is
   "unclear" and the form asks for a number (with buttons 0-10).
4. Anything else ("随便", "abc", "", "😂") is "unclear".

`parse_comment` reads the optional comment: None for a skip or "没有"/"无", else the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from actions.rules._text import fold

CSAT_MIN, CSAT_MAX = 1, 5
NPS_MIN, NPS_MAX = 0, 10

ReadingKind = Literal["score", "out_of_range", "unclear", "skip"]
NpsGroup = Literal["promoter", "passive", "detractor"]


@dataclass(frozen=True)
class ScoreReading:
    kind: ReadingKind
    score: int | None = None  # the score; for "out_of_range" the whole number that was read


UNCLEAR = ScoreReading("unclear")
SKIP = ScoreReading("skip")

# Matched as substrings of the folded text.
SKIP_WORDS = (
    "跳过",
    "不想答",
    "不想回答",
    "不想填",
    "不想评",
    "不想打分",
    "不评价",
    "不打分",
    "不评分",
    "不参与",
    "不做了",
    "不填了",
    "算了",
    "下次吧",
    "下次再说",
    "以后再说",
    "不用了",
    "别问了",
    "没空",
    "没时间",
    "拒绝",
    "免了",
)
# Matched as whole words.
SKIP_ASCII = ("stop", "skip", "pass", "quit", "exit", "cancel", "no thanks")
# A comment that says there is nothing to add.
NO_COMMENT_WORDS = (
    "没有",
    "没了",
    "无",
    "没",
    "没什么",
    "没意见",
    "没有意见",
    "no",
    "none",
    "nothing",
)

CSAT_WORDS: dict[str, int] = {
    **dict.fromkeys(
        (
            "非常满意",
            "很满意",
            "十分满意",
            "特别满意",
            "超级满意",
            "超满意",
            "太满意",
            "相当满意",
            "非常好",
            "特别好",
            "太好了",
            "非常棒",
            "棒极了",
            "超赞",
            "完美",
            "好评",
            "非常不错",
            "百分百满意",
        ),
        5,
    ),
    **dict.fromkeys(
        (
            "满意",
            "挺满意",
            "比较满意",
            "还算满意",
            "挺好",
            "很好",
            "蛮好",
            "比较好",
            "不错",
            "还不错",
            "挺不错",
            "很棒",
            "可以",
            "赞",
            "👍",
        ),
        4,
    ),
    **dict.fromkeys(
        (
            "一般",
            "一般般",
            "还行",
            "凑合",
            "凑和",
            "还可以",
            "还好",
            "马马虎虎",
            "过得去",
            "说得过去",
            "普通",
            "中规中矩",
            "中评",
            "差不多",
            "不差",
            "不算差",
        ),
        3,
    ),
    **dict.fromkeys(
        (
            "不满意",
            "不太满意",
            "不是很满意",
            "不怎么满意",
            "不大满意",
            "不满",
            "不太好",
            "不好",
            "不怎么样",
            "不咋地",
            "不行",
            "较差",
            "比较差",
            "有点差",
            "差",
            "失望",
            "👎",
        ),
        2,
    ),
    **dict.fromkeys(
        (
            "非常不满意",
            "很不满意",
            "十分不满意",
            "特别不满意",
            "极其不满意",
            "超级不满意",
            "太不满意",
            "一点都不满意",
            "一点也不满意",
            "很不好",
            "很差",
            "太差",
            "非常差",
            "极差",
            "差劲",
            "垃圾",
            "很烂",
            "太烂",
            "烂",
            "糟糕",
            "差评",
            "很失望",
            "非常失望",
            "太失望",
        ),
        1,
    ),
}
_CSAT_LONGEST_FIRST = sorted(CSAT_WORDS, key=len, reverse=True)

_EMOJI_NOISE = re.compile("[\ufe0f\u20e3]")  # variation selector, keycap: 4️⃣ is 4

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+"
_NUMBER = re.compile(rf"(?<![\d.])(?:(?<!\w)-)?(?:{_NUM})")  # "-1" is a (negative) number
_STARS = re.compile("[★⭐🌟]")
# "满分10分", "10分制", "10分里", "10分满分": the scale, not the answer.
_SCALE = re.compile(
    rf"满分(?:是|为)?\s*(?:\d+\s*分?|[十五百]+\s*分)|(?:{_NUM})\s*分\s*(?:制|里|中|满分|的话)"
)
_FRACTION = re.compile(
    rf"(?P<num>{_NUM})\s*/\s*(?P<den>{_NUM})|(?P<den2>{_NUM})分之(?P<num2>{_NUM})"
)
_RANGE = re.compile(rf"(?:{_NUM})\s*(?:-|~|～|到|至|或者?|、)\s*(?:{_NUM})\s*(?:分|星|$)")
# Numerals inside words: 十分满意 (very), 万分, 百分百, 一般, 一下, 十分钟, 一星期.
_NOT_SCORES = re.compile(
    r"(?:十|百)分(?=[的地]?[\u4e00-\u9fff])(?![的地]?[吧啊呀吗呢哦噢嘛了呗哈])"
    r"|百分[百之]|一(?=[般下点些直起样定次会旦共])|\d*分钟|星期"
)
_POINT_UNIT = re.compile(r"\s*个?\s*(?:分|份|points?|pts?)(?![钟之])")
_STAR_UNIT = re.compile(r"\s*[个颗]?\s*(?:星|stars?)|\s*颗")
# What may follow a bare number: nothing, punctuation, a particle, an emoji.
_BARE_END = re.compile(r"\s*(?:$|[^\w]|[吧啊呀吗呢哦噢嘛了呗哈的])")
_BARE_BEFORE = re.compile(r"(?:打|给|评|选)个?\s*$")
_FILLERS = re.compile(r"[\s\W_]|[吧啊呀吗呢哦噢嘛了呗哈的我就打给个评选]")


def parse_csat(text: str) -> ScoreReading:
    """A CSAT answer (1-5) from buttons or free text; see the module docstring."""
    folded = _fold(text)
    reading = _number_reading(folded, CSAT_MIN, CSAT_MAX, stars=True)
    if reading is None:
        reading = SKIP if _is_skip(folded) else _word_reading(folded)
    return reading


def parse_nps(text: str) -> ScoreReading:
    """An NPS answer (0-10); words alone are unclear, see the module docstring."""
    folded = _fold(text)
    reading = _number_reading(folded, NPS_MIN, NPS_MAX, stars=False)
    if reading is None:
        reading = SKIP if _is_skip(folded) else UNCLEAR
    return reading


def parse_comment(text: str) -> str | None:
    """The optional comment, or None when the customer skips it or has nothing to add."""
    comment = text.strip()
    folded = _fold(comment)
    core = _FILLERS.sub("", folded)  # "没有了。" is 没有; "👍" or "..." alone says nothing
    if not core or core in NO_COMMENT_WORDS or _is_skip(folded):
        return None
    return comment


# A comment may mention an order, points or a delivery ("快递太慢了"); only a message phrased as
# a question or a request ("快递到哪了？", "帮我查下积分") is the customer asking for something.
_QUESTION = re.compile(
    r"[?？]|[吗呢么嘛]\W*$|怎么|怎样|如何|多少|几[点时号天个]|哪[里儿个些]?|什么时候|是不是|是否"
    r"|能不能|可不可以|能否|有没有|可以.*[吗么]"
)
_REQUEST = re.compile(r"^(请|麻烦|帮我|帮忙|给我|我要|我想(?!说)|我需要|查[一下询]|查查)")


def reads_as_request(text: str) -> bool:
    """Whether the text at the comment question asks for something rather than telling us."""
    folded = text.strip()
    return bool(_QUESTION.search(folded) or _REQUEST.search(folded))


def is_detractor(csat: int | None, nps: int | None) -> bool:
    """Whether an answer calls for a follow-up: NPS 0-6 or CSAT 1-2."""
    return (nps is not None and nps <= 6) or (csat is not None and csat <= 2)


def nps_group(nps: int) -> NpsGroup:
    """The NPS bucket: 9-10 promoter, 7-8 passive, 0-6 detractor."""
    if not NPS_MIN <= nps <= NPS_MAX:
        raise ValueError(f"NPS {nps} is outside {NPS_MIN}-{NPS_MAX}")
    return "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor"


# --- numbers --------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return _EMOJI_NOISE.sub("", fold(text)).replace("🔟", "10").strip()


def _number_reading(folded: str, low: int, high: int, *, stars: bool) -> ScoreReading | None:
    """The reading of the numbers in the text; None when there are none."""
    if _RANGE.search(folded):
        return UNCLEAR
    text = _SCALE.sub(" ", folded)
    values = _fractions(text, high)
    if values is None:
        text = _FRACTION.sub(" ", _NOT_SCORES.sub(" ", text))
        values = _scores(text, high, stars=stars)
    if not values:
        return None
    return _in_range(values, low, high)


def _fractions(text: str, high: int) -> set[float | None] | None:
    """Values of "4/5" and "五分之四" on the question's scale; None without a fraction."""
    found: set[float | None] = set()
    for match in _FRACTION.finditer(text):
        numerator = _value(match["num"] or match["num2"])
        denominator = _value(match["den"] or match["den2"])
        found.add(numerator if denominator == high else None)
    return found or None


def _scores(text: str, high: int, *, stars: bool) -> set[float | None]:
    """Numbers with a unit if there are any, else bare ones; None marks an unreadable one."""
    with_unit: set[float | None] = set()
    bare: set[float | None] = set()
    for match in _NUMBER.finditer(text):
        end = match.end()
        if _POINT_UNIT.match(text, end) or (stars and _STAR_UNIT.match(text, end)):
            with_unit.add(_value(match.group()))
        elif _is_bare(text, match):
            bare.add(_value(match.group()))
    if "满分" in text:
        with_unit.add(float(high))
    if stars and (count := len(_STARS.findall(text))):
        with_unit.add(float(count))
    return with_unit or bare


def _is_bare(text: str, match: re.Match[str]) -> bool:
    """A number on its own: "4", "9吧", "给五", "打个8", but not "3天" or "一个"."""
    if not _BARE_END.match(text, match.end()):
        return False
    if match.group().lstrip("-")[0].isdigit():
        return True
    alone = _FILLERS.sub("", text) == match.group()
    return alone or bool(_BARE_BEFORE.search(text, 0, match.start()))


def _value(numeral: str) -> float | None:
    """4, 4.5, -1, 四, 十, 十一, 二十, 一百; None for numerals that are not one number (八九)."""
    if numeral.startswith("-"):
        value = _value(numeral[1:])
        return None if value is None else -value
    if numeral[0].isdigit():
        return float(numeral)
    match = re.fullmatch(r"([一二两三四五六七八九])?百(?:零?([一二三四五六七八九]))?", numeral)
    if match:
        return 100.0 * _DIGITS.get(match[1] or "一", 1) + _DIGITS.get(match[2] or "零", 0)
    match = re.fullmatch(r"([一二两三四五六七八九])?十([一二三四五六七八九])?", numeral)
    if match:
        return 10.0 * _DIGITS.get(match[1] or "一", 1) + _DIGITS.get(match[2] or "零", 0)
    return float(_DIGITS[numeral]) if len(numeral) == 1 else None


def _in_range(values: set[float | None], low: int, high: int) -> ScoreReading:
    if len(values) != 1:
        return UNCLEAR
    (value,) = values
    if value is None or value != int(value):
        return UNCLEAR
    score = int(value)
    return ScoreReading("score" if low <= score <= high else "out_of_range", score)


# --- words ----------------------------------------------------------------------------------


def _is_skip(folded: str) -> bool:
    if any(word in folded for word in SKIP_WORDS):
        return True
    return any(re.search(rf"(?<![a-z]){word}(?![a-z])", folded) for word in SKIP_ASCII)


def _word_reading(folded: str) -> ScoreReading:
    """The CSAT read from satisfaction words, longest entries first so 不满意 hides 满意."""
    scores: set[int] = set()
    for word in _CSAT_LONGEST_FIRST:
        if word in folded:
            scores.add(CSAT_WORDS[word])
            folded = folded.replace(word, "\0")
    if not scores or (min(scores) < 3 < max(scores)):
        return UNCLEAR
    if 3 in scores and len(scores) > 1:
        scores.discard(3)  # "还行，挺好的": the word that leans wins over the neutral one
    return ScoreReading("score", max(scores, key=lambda score: abs(score - 3)))
