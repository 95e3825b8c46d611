"""Template messages (模板消息): how a proactive text reaches a follower outside the CS window.

A template has fixed wording approved by WeChat and typed fields the sender fills. The channel
puts the whole bot text into one field (`template_field`, default `thing1`), squeezed onto one
line and cut to the field's length limit with an ellipsis, because WeChat refuses (or silently
cuts) a longer value. The limits are WeChat's for its category templates; `keywordN` fields of
the older templates take about 200 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_FIELD = "thing1"
ELLIPSIS = "…"
OLD_STYLE_LIMIT = 200
FIELD_LIMITS = {  # characters, by the field's kind (its name without the trailing number)
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "name": 10,
    "phrase": 5,
    "symbol": 5,
}


def field_limit(field: str) -> int:
    """The length limit of a template field, from its kind (`thing1` is a `thing`)."""
    return FIELD_LIMITS.get(field.rstrip("0123456789"), OLD_STYLE_LIMIT)


def fit(text: str, limit: int) -> str:
    """The text on one line, at most `limit` characters, cut with an ellipsis when longer."""
    line = re.sub(r"\s+", " ", text).strip()
    if len(line) <= limit:
        return line
    return line[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


@dataclass(frozen=True)
class TemplateConfig:
    """The approved template the channel sends outside the 48-hour window."""

    template_id: str
    field: str = DEFAULT_FIELD
    limit: int = field_limit(DEFAULT_FIELD)
    url: str | None = None

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> TemplateConfig | None:
        """The template section of the channel's credentials, or None without a template_id."""
        template_id = credentials.get("template_id")
        if not template_id:
            return None
        name = str(credentials.get("template_field") or DEFAULT_FIELD)
        limit = int(credentials.get("template_field_limit") or field_limit(name))
        if limit < 1:
            raise ValueError("template_field_limit must be at least 1")
        url = credentials.get("template_url")
        return cls(str(template_id), name, limit, str(url) if url else None)

    def body(self, openid: str, text: str) -> dict[str, Any]:
        """The JSON body of message/template/send for this text."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": self.template_id,
            "data": {self.field: {"value": fit(text, self.limit)}},
        }
        if self.url:
            body["url"] = self.url
        return body
