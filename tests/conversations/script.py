"""Scripted customer conversations (tests/conversations/*.yml): the file format, its checks when
a file is loaded, the placeholders, and how a bot reply is matched against the responses of
domain.yml. Nothing here talks to the system; tests/integration/test_conversations.py runs
them. The format is described in tests/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.settings import PROJECT_DIR

SCRIPTS_DIR = Path(__file__).parent  # subdirectories (pending/) are not collected
CHANNELS = ("rest", "wechat")
STEP_KEYS = {"say", "click", "event", "trigger", "replies", "mentions", "absent", "buttons", "crm"}
CONVERSATION_KEYS = {"name", "channel", "member", "offers", "steps", "crm", "why"}
MEMBER_KEYS = {
    "name",
    "tier",
    "linked",
    "consents",
    "orders",
    "points",
    "tickets",
    "surveyed_days_ago",
}
ORDER_KEYS = {"key", "items", "status", "placed_days_ago", "carrier", "shipping"}
CRM_KEYS = {
    "tickets",
    "points",
    "coupons",
    "consents",
    "survey_responses",
    "handoffs",
    "interactions",
    "feedback",
    "identities",
    "phone",
    "conversation",
    "audit",
}
WECHAT_EVENTS = ("subscribe", "CLICK")
PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_-]+)?)\}")
# A slot or format value inside a response text: "{points}"
RESPONSE_FIELD = re.compile(r"\{\w+\}")


class ScriptError(ValueError):
    """A conversation file that does not follow the format."""


@dataclass(frozen=True)
class Step:
    """One thing the customer does, and what must follow."""

    say: str | None = None  # the customer's words, or a payload such as "/affirm"
    click: str | None = None  # the title of a button the bot just showed (its payload is sent)
    event: str | None = None  # WeChat: "subscribe", or "CLICK <menu key>"
    trigger: Mapping[str, Any] | None = None  # an EXTERNAL_ intent through trigger_intent
    replies: tuple[str, ...] = ()  # the response names the bot answers with, in order
    mentions: tuple[str, ...] = ()  # texts that must appear in the replies
    absent: tuple[str, ...] = ()  # texts that must not appear
    buttons: tuple[str, ...] | None = None  # the button titles shown, in order
    crm: Mapping[str, Any] = field(default_factory=dict)  # checked after this step

    def label(self) -> str:
        if self.say is not None:
            return f"say {self.say!r}"
        if self.click is not None:
            return f"click {self.click!r}"
        if self.event is not None:
            return f"event {self.event}"
        return f"trigger {dict(self.trigger or {})}"


@dataclass(frozen=True)
class Conversation:
    name: str
    file: str
    channel: str
    steps: tuple[Step, ...]
    member: Mapping[str, Any] | None = None  # a fresh member made for this conversation
    offers: tuple[Mapping[str, Any], ...] = ()  # offers that must exist (shared, made once)
    crm: Mapping[str, Any] = field(default_factory=dict)  # checked after the last step

    @property
    def id(self) -> str:
        return f"{Path(self.file).stem}: {self.name}"


# ---------------------------------------------------------------------------------------------
# Responses


@cache
def domain_responses() -> dict[str, list[dict[str, Any]]]:
    domain = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))
    return dict(domain["responses"])


def variant_pattern(text: str) -> str:
    """A response text as a regular expression: each {field} stands for any text."""
    parts = RESPONSE_FIELD.split(text)
    return "(?:.*?)".join(re.escape(part) for part in parts)


@cache
def response_pattern(name: str, channel: str) -> re.Pattern[str]:
    """What a reply of response `name` looks like on `channel`: one of its text variants; on
    WeChat followed by its buttons as numbered lines."""
    variants = [str(v["text"]) for v in domain_responses()[name] if v.get("text")]
    if not variants:
        raise ScriptError(f"{name} has no text variant")
    alternatives = "|".join(f"(?:{variant_pattern(text)})" for text in variants)
    buttons = r"(?:\n\d+\. [^\n]*)*" if channel == "wechat" else ""
    return re.compile(f"(?:{alternatives}){buttons}", re.S)


def matches(name: str, channel: str, text: str) -> bool:
    return response_pattern(name, channel).fullmatch(text) is not None


def responses_matching(text: str, channel: str) -> list[str]:
    """Every response a reply could be (for the failure message)."""
    return [name for name in domain_responses() if _has_text(name) and matches(name, channel, text)]


def _has_text(name: str) -> bool:
    return any(variant.get("text") for variant in domain_responses()[name])


@dataclass(frozen=True)
class Reply:
    """A bot message as the customer got it."""

    text: str
    buttons: tuple[tuple[str, str | None], ...] = ()  # (title, payload); WeChat: no payload


def wechat_reply(content: str) -> Reply:
    """A WeChat text: the message, then its buttons as numbered lines (messages.render_text)."""
    lines = content.split("\n")
    titles: list[str] = []
    while lines and re.fullmatch(r"\d+\. .*", lines[-1]):
        titles.insert(0, lines.pop().split(". ", 1)[1])
    return Reply(content, tuple((title, None) for title in titles))


def rest_reply(message: Mapping[str, Any]) -> Reply:
    buttons = message.get("buttons") or message.get("quick_replies") or []
    return Reply(
        str(message.get("text") or ""),
        tuple((str(b.get("title", "")), b.get("payload")) for b in buttons),
    )


def reply_mismatch(expected: Iterable[str], replies: list[Reply], channel: str) -> str | None:
    """Why the replies are not the expected responses in that order, or None when they are."""
    wanted = list(expected)
    problems = [
        f"reply {index + 1} is not {name}"
        for index, (name, reply) in enumerate(zip(wanted, replies, strict=False))
        if not matches(name, channel, reply.text)
    ]
    problems += [
        f"reply {index + 1} shows an unfilled {field.group(0)}"
        for index, reply in enumerate(replies)
        for field in RESPONSE_FIELD.finditer(reply.text)
    ]
    if len(wanted) != len(replies):
        problems.append(f"{len(replies)} replies, {len(wanted)} expected")
    if not problems:
        return None
    said = "\n".join(
        f"  {reply.text!r} ~ {responses_matching(reply.text, channel) or '(no response)'}"
        for reply in replies
    )
    return f"{'; '.join(problems)}; expected {wanted}, the bot said:\n{said}"


# ---------------------------------------------------------------------------------------------
# Placeholders: {order.fryer}, {code}, ... filled in from the running conversation


def fill(text: str, resolve: Callable[[str], str]) -> str:
    """`text` with each {placeholder} replaced by what `resolve` gives for its name."""
    return PLACEHOLDER.sub(lambda m: resolve(m.group(1)), text)


def fill_all(value: Any, resolve: Callable[[str], str]) -> Any:
    """Placeholders filled in every string of a YAML value."""
    if isinstance(value, str):
        return fill(value, resolve)
    if isinstance(value, list):
        return [fill_all(item, resolve) for item in value]
    if isinstance(value, dict):
        return {key: fill_all(item, resolve) for key, item in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# Loading


def load_conversations(directory: Path = SCRIPTS_DIR) -> list[Conversation]:
    """Every conversation of every *.yml file directly in `directory`, in file order."""
    conversations = [
        conversation for path in sorted(directory.glob("*.yml")) for conversation in load_file(path)
    ]
    names = [c.id for c in conversations]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise ScriptError(f"conversation names used twice: {sorted(duplicates)}")
    return conversations


def load_file(path: Path) -> list[Conversation]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("conversations"), list):
        raise ScriptError(f"{path.name}: a mapping with a list `conversations`")
    return [conversation(path.name, raw) for raw in document["conversations"]]


def conversation(file: str, raw: Any) -> Conversation:
    where = f"{file}: {raw.get('name') if isinstance(raw, dict) else raw!r}"
    _keys(raw, CONVERSATION_KEYS, where, required={"name", "channel", "steps"})
    channel = raw["channel"]
    if channel not in CHANNELS:
        raise ScriptError(f"{where}: channel is one of {CHANNELS}")
    member = raw.get("member")
    if member is not None:
        _member(member, where)
    steps = tuple(step(s, channel, f"{where}, step {i + 1}") for i, s in enumerate(raw["steps"]))
    if not steps:
        raise ScriptError(f"{where}: no steps")
    crm = raw.get("crm") or {}
    _crm(crm, where)
    return Conversation(
        name=str(raw["name"]),
        file=file,
        channel=channel,
        steps=steps,
        member=member,
        offers=tuple(raw.get("offers") or ()),
        crm=crm,
    )


def step(raw: Any, channel: str, where: str) -> Step:
    _keys(raw, STEP_KEYS, where, required=set())
    actions = [key for key in ("say", "click", "event", "trigger") if key in raw]
    if len(actions) != 1:
        raise ScriptError(f"{where}: exactly one of say, click, event, trigger")
    if "event" in raw and (
        channel != "wechat" or str(raw["event"]).split()[0] not in WECHAT_EVENTS
    ):
        raise ScriptError(f"{where}: events are WeChat's {WECHAT_EVENTS}")
    if "click" in raw and channel == "wechat":
        raise ScriptError(f"{where}: WeChat shows buttons as numbered lines: nothing to click")
    replies = tuple(raw.get("replies") or ())
    for name in replies:
        if name not in domain_responses():
            raise ScriptError(f"{where}: {name} is not a response in domain.yml")
        if not _has_text(name):
            raise ScriptError(f"{where}: {name} has no text to match")
    crm = raw.get("crm") or {}
    _crm(crm, where)
    buttons = raw.get("buttons")
    return Step(
        say=_text(raw.get("say")),
        click=_text(raw.get("click")),
        event=_text(raw.get("event")),
        trigger=raw.get("trigger"),
        replies=replies,
        mentions=tuple(str(m) for m in raw.get("mentions") or ()),
        absent=tuple(str(m) for m in raw.get("absent") or ()),
        buttons=tuple(str(b) for b in buttons) if buttons is not None else None,
        crm=crm,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _member(raw: Any, where: str) -> None:
    _keys(raw, MEMBER_KEYS, f"{where}, member", required=set())
    for order in raw.get("orders") or ():
        _keys(order, ORDER_KEYS, f"{where}, order", required={"key", "items"})


def _crm(raw: Any, where: str) -> None:
    _keys(raw, CRM_KEYS, f"{where}, crm", required=set())


def _keys(raw: Any, allowed: set[str], where: str, required: set[str]) -> None:
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: a mapping expected, not {raw!r}")
    unknown = set(raw) - allowed
    missing = required - set(raw)
    if unknown or missing:
        raise ScriptError(f"{where}: unknown {sorted(unknown)}, missing {sorted(missing)}")
