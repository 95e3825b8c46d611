"""Which of the choices the bot has just offered a customer's answer takes.

People answer a list the way they would answer a person: by its number ("2", "第二个", "选3",
and on WeChat, where buttons are numbered lines, the number is all they can type), by its name or
part of it ("满100减20那个"), by pointing ("这个", "最后一个"), or, when there is one choice, with a
bare "我要" / "I'll take it". `resolve_choice` reads the answer against the offered buttons and
says which one it takes, that it takes one but does not say which (a question back is due), or
that it is not an answer to the list at all (the NLU's reading stands).

Pointing and bare acceptance only count for a *list*: buttons that all carry one intent (offers,
orders). A yes/no question's buttons carry different intents, and "好的" there is an `affirm`
for the NLU and the dialogue to handle.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from bot.nlu.normalize import to_simplified

# An answer is read after folding (NFKC, lower case) with spaces and punctuation removed.
_NOISE = re.compile(r"[\s,.!?;:~，。！？；：、…·\"'“”‘’()（）【】\[\]<>《》-]+")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS |= {"六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_PREFIX = (
    r"(?:我|俺)?(?:就|还是|那|那就)?"
    r"(?:想|想要|要|选|选择|挑|领|领取|拿|来|用|买|换|兑换|take|choose){0,2}"
)
# What may follow a position: a measure word, the kind of thing, a closing particle.
_SUFFIX = (
    r"(?:个|项|条|号|张|种|款|份|位|件|st|nd|rd|th)?(?:券|优惠券|优惠|订单|商品)?"
    r"(?:吧|啦|了|的|呢|就行|就好|好了|可以)?$"
)
_NUMBER = re.compile(
    _PREFIX + r"(?:第|no|#|number|option)?(\d{1,2}|[一二两俩三四五六七八九十])" + _SUFFIX
)
_POINTING = re.compile(
    _PREFIX + r"(?:这|那|这一|那一|上面那|上面的|刚才那|刚才的|就这|就那)(?:个|张|项|条|种|款|份)?"
    r"(?:券|优惠券|优惠)?(?:吧|啦|了|的|呢|就行|就好|好了|可以|我要了|要了|给我)?$"
    r"|^(?:就它|就是它|它|this|thatone|thisone|this one|that one)(?:吧|了)?$"
)
_LAST = re.compile(_PREFIX + r"(?:最后|最下面|最后面|倒数第一)(?:一|那|的)?" + _SUFFIX)
_ACCEPT = re.compile(
    r"^(?:我|俺)?(?:就|那就|那我)?(?:要|要了|想要|领|领取|领了|拿|收下|兑换|换)"
    r"(?:一张|一个|一下|吧|了|呀|啊|它|这个|那个)?(?:吧|了|谢谢|谢啦)?$"
    r"|^(?:帮我|给我)(?:领|领取|领一张|来一张|来一个|兑换)?(?:吧|一下)?$"
    r"|^(?:i'?lltakeit|iwantit|takeit|illtakeit|yesplease|iwantthat|givemethat|claimit)$"
)
# Agreement that takes the only choice offered ("好的" to one offer), and means nothing more.
_AGREE = re.compile(
    r"^(?:嗯|嗯嗯)?(?:好|好的|好啊|好呀|可以|行|没问题|ok|okay|yes|sure)(?:吧|呀|啊)?(?:谢谢)?$"
)
# Words that name the kind of thing rather than one of the choices: ignored when names are matched.
_GENERIC = ("优惠券", "优惠", "券", "活动", "订单", "的")
# What may surround a choice's name in a plain claim of it ("我要领满100减20的那张券").
_FILLER = re.compile(
    r"我|俺|想|要|就|选|领|取|拿|用|换|兑|帮|给|来|这|那|个|张|项|条|种|款|份|一|吧|了|啦|呀|啊|的"
    r"|优惠|券|活动|订单|谢谢|please|take|want|the|one|i"
)
MIN_NAME_OVERLAP = 2  # characters two names must share before one is read as the other
MAX_ANSWERS_TO_A_LIST = 3  # customer messages after a list that may still answer it


@dataclass(frozen=True)
class Choice:
    """A button the bot offered: what it showed and the payload it stands for."""

    title: str
    payload: str

    @property
    def intent(self) -> str:
        return parse_payload(self.payload)[0]


@dataclass(frozen=True)
class Resolution:
    """`choice` the answer takes; or `ask_which` when it takes one without saying which.

    `says_more` marks an answer that names a choice among other words ("DD123 我要退货"): the
    NLU's reading of those words may be the customer's real request.
    """

    choice: Choice | None = None
    ask_which: bool = False
    how: str = ""  # number, name, last, pointing: for the log and the tests
    says_more: bool = False


NOT_AN_ANSWER = Resolution()


def parse_payload(payload: str) -> tuple[str, dict[str, Any]]:
    """`/intent{"slot": "value"}` as (intent, entities); anything else as ("", {})."""
    match = re.fullmatch(r"/([^{\s]+)(\{.*\})?", payload.strip(), flags=re.DOTALL)
    if match is None:
        return "", {}
    try:
        entities = json.loads(match.group(2)) if match.group(2) else {}
    except ValueError:
        return match.group(1), {}
    return match.group(1), entities if isinstance(entities, dict) else {}


def fold_answer(text: str) -> str:
    """Full-width to ASCII, Traditional to Simplified, lower case, no spaces or punctuation."""
    return _NOISE.sub("", to_simplified(unicodedata.normalize("NFKC", text)).lower())


def _number(answer: str) -> int | None:
    match = _NUMBER.match(answer)
    if match is None:
        return None
    token = match.group(1)
    return int(token) if token.isdigit() else _CN_DIGITS[token]


def _core_name(title: str) -> str:
    core = fold_answer(title)
    for word in _GENERIC:
        core = core.replace(word, "")
    return core


def _common_run(a: str, b: str) -> str:
    """The longest run of characters `a` and `b` share (the first one found)."""
    best = ""
    for start in range(len(a)):
        end = start + len(best) + 1
        while end <= len(a) and a[start:end] in b:
            best, end = a[start:end], end + 1
    return best


def _said_of(answer: str, name: str) -> str:
    """The part of `name` the answer says: all of it, a distinctive run of it, or nothing."""
    if not name:
        return ""
    run = _common_run(answer, name)
    needed = max(MIN_NAME_OVERLAP, min(len(name), len(answer)) // 2)
    return run if len(run) >= needed else ""


def _by_name(answer: str, choices: list[Choice]) -> tuple[Choice, str] | None:
    """The one choice whose name the answer says best, and the part it says."""
    said = [(_said_of(answer, _core_name(choice.title)), choice) for choice in choices]
    ranked = sorted(said, key=lambda pair: len(pair[0]), reverse=True)
    if not ranked or not ranked[0][0]:
        return None
    if len(ranked) > 1 and len(ranked[1][0]) == len(ranked[0][0]):
        return None
    return ranked[0][1], ranked[0][0]


def is_list(choices: list[Choice]) -> bool:
    """Buttons that are alternatives of one kind (one intent), not a question's answers."""
    return len({choice.intent for choice in choices}) == 1


def resolve_choice(text: str, choices: list[Choice]) -> Resolution:
    """Which offered choice `text` takes; see the module docstring."""
    answer = fold_answer(text)
    if not choices or not answer or answer.startswith("/"):
        return NOT_AN_ANSWER
    number = _number(answer)
    if number is not None:
        if 1 <= number <= len(choices):
            return Resolution(choices[number - 1], how="number")
        return Resolution(ask_which=True, how="number")
    named = _by_name(answer, choices)
    if named is not None:
        choice, said = named
        rest = _FILLER.sub("", answer.replace(said, "", 1))
        return Resolution(choice, how="name", says_more=bool(rest))
    if not is_list(choices):
        return NOT_AN_ANSWER
    if _LAST.match(answer):
        return Resolution(choices[-1], how="last")
    if _POINTING.match(answer) or _ACCEPT.match(answer):
        if len(choices) == 1:
            return Resolution(choices[0], how="pointing")
        return Resolution(ask_which=True, how="pointing")
    if _AGREE.match(answer) and len(choices) == 1:
        return Resolution(choices[0], how="pointing")
    return NOT_AN_ANSWER


def offered_choices(events: list[dict[str, Any]]) -> list[Choice]:
    """The choices the customer is answering: the buttons of the bot's last reply, or of an
    earlier list they have been choosing from since ("2", then "我要领第二个券").

    `events` are tracker events as dicts (oldest first); the message being read is not among
    them yet. A list stays current only while every later customer message took one of its
    choices (its intent); any other message, or a newer message with buttons, replaces it.
    """
    since: list[str] = []  # the intents of the customer's messages after the candidate list
    for event in reversed(events):
        if event.get("event") == "user":
            since.append(str(((event.get("parse_data") or {}).get("intent") or {}).get("name")))
            if len(since) > MAX_ANSWERS_TO_A_LIST:
                return []
        elif event.get("event") == "bot":
            choices = _buttons(event)
            if choices:
                still_current = not since or (
                    is_list(choices) and all(i == choices[0].intent for i in since)
                )
                return choices if still_current else []
    return []


def _buttons(event: dict[str, Any]) -> list[Choice]:
    buttons = (event.get("data") or {}).get("buttons") or []
    return [
        Choice(str(b.get("title", "")), str(b.get("payload", "")))
        for b in buttons
        if isinstance(b, dict) and str(b.get("payload", "")).startswith("/")
    ]
