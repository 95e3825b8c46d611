"""Membership tiers, points redemption limits, and points amounts in customer phrasing.

Tiers follow the last twelve months' spend, by crm_store's rule
(`crm_store.customers.TIER_SPEND_THRESHOLDS`, which the demo data is generated with too): 银卡
from 2,000 元, 金卡 from 8,000 元, 钻石 from 20,000 元.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from actions.rules._text import fold
from crm_store.customers import TIER_SPEND_THRESHOLDS
from crm_store.models import TIERS

TIER_THRESHOLDS = TIER_SPEND_THRESHOLDS  # crm_store's rule: the demo data and answers agree
MAX_REDEMPTION = 100_000  # points in one redemption; more goes to an agent

RedemptionReason = Literal["not_positive", "too_many", "short"]


@dataclass(frozen=True)
class TierProgress:
    next_tier: str
    cents_needed: int  # 0: already qualifies, upgraded at the next tier review


@dataclass(frozen=True)
class RedemptionDecision:
    ok: bool
    reason: RedemptionReason | None = None
    shortfall: int = 0  # points missing, for "short"


def next_tier_progress(tier: str, annual_spend_cents: int) -> TierProgress | None:
    """How far the customer is from the tier above theirs; None at the top tier."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    position = TIERS.index(tier)
    if position == len(TIERS) - 1:
        return None
    next_tier = TIERS[position + 1]
    return TierProgress(next_tier, max(0, TIER_THRESHOLDS[next_tier] - annual_spend_cents))


def redemption_check(balance: int, requested: int) -> RedemptionDecision:
    """The refusal names the limit the customer can act on: a balance below the cap is named
    first ("you have 10 points", and so "at most 10"), where "at most 100,000 at once" would
    only lead to a second refusal; from a balance at the cap on, the cap is the limit."""
    if requested <= 0:
        return RedemptionDecision(False, "not_positive")
    if requested > balance and balance < MAX_REDEMPTION:
        return RedemptionDecision(False, "short", requested - max(balance, 0))
    if requested > MAX_REDEMPTION:
        return RedemptionDecision(False, "too_many")
    return RedemptionDecision(True)


# --- amounts --------------------------------------------------------------------------------

_DIGITS = {
    **dict.fromkeys("零〇", 0),
    **dict.fromkeys("一壹", 1),
    **dict.fromkeys("二两贰", 2),
    **dict.fromkeys("三叁", 3),
    **dict.fromkeys("四肆", 4),
    **dict.fromkeys("五伍", 5),
    **dict.fromkeys("六陆", 6),
    **dict.fromkeys("七柒", 7),
    **dict.fromkeys("八捌", 8),
    **dict.fromkeys("九玖", 9),
}
_SMALL_UNITS = {
    **dict.fromkeys("十拾", 10),
    **dict.fromkeys("百佰", 100),
    **dict.fromkeys("千仟k", 1000),
}
_BIG_UNITS = {**dict.fromkeys("万w", 10_000), "亿": 100_000_000}
_NUMERAL = "零〇一壹二两贰三叁四肆五伍六陆七柒八捌九玖十拾百佰千仟万亿"
_ARABIC = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?"
# A number: Arabic and/or Chinese numerals, optionally ending in a colloquial k / w ("2k", "5w").
_NUMBER = re.compile(rf"(?:(?<!\d)-)?(?:{_ARABIC}|[{_NUMERAL}])+(?:[kw](?![a-z]))?")
_HAS_DIGIT = re.compile(r"[\d零〇一壹二两贰三叁四肆五伍六陆七柒八捌九玖十拾]")
# Words made of numerals that are not amounts: 兑换一下, 一个杯子, 千万别, 十分满意, 万一, 百分百.
_NOT_NUMBERS = re.compile(
    r"一(?:下|点|些|共|起|直|样|般|次|个|定|会|旦)|统一|唯一|百分百|千万(?=[别不要])"
    r"|(?<![\d零〇一二两三四五六七八九])(?:十分|万一)"
)
_POINTS_AFTER = re.compile(r"\s*(?:个)?(?:积分|分|点|points?)")
_REDEEM_BEFORE = re.compile(r"(?:兑换|兑|换|用|抵扣|抵|花|redeem)(?:了|掉)?\s*$")


def _parts(token: str) -> list[str]:
    """ "1.5万" -> ["1.5", "万"]; thousands separators dropped."""
    return re.findall(r"\d+(?:\.\d+)?|.", token.replace(",", ""))


def _value(token: str) -> Decimal:
    """A Chinese/Arabic numeral: 五百 500, 一千五百 1500, 一千五 1500, 1万5 15000, 十万 100000."""
    total = section = Decimal(0)
    number: Decimal | None = None
    last_unit = 0
    for part in _parts(token):
        if part in _BIG_UNITS:
            total += (section + (number or 0)) * _BIG_UNITS[part]
            section, number, last_unit = Decimal(0), None, _BIG_UNITS[part]
        elif part in _SMALL_UNITS:
            section += (Decimal(1) if number is None else number) * _SMALL_UNITS[part]
            number, last_unit = None, _SMALL_UNITS[part]
        elif part in _DIGITS:
            number = Decimal(_DIGITS[part])
            last_unit = 0 if part in "零〇" else last_unit
        else:
            number = Decimal(part)
    if number is not None and last_unit >= 10 and number < 10 and number == int(number):
        number *= last_unit // 10  # 一千五 is 1500 and 两万五 is 25000, not 1005 and 20005
    return total + section + (number or 0)


def _preferred(text: str, matches: list[re.Match[str]]) -> re.Match[str]:
    """The amount to redeem: one right after 兑换/用, else one followed by 积分, else the first.

    "我有12990积分，想兑换500" names the balance first; the verb is what marks the request.
    """
    for match in matches:
        if _REDEEM_BEFORE.search(text, 0, match.start()):
            return match
    for match in matches:
        if _POINTS_AFTER.match(text, match.end()):
            return match
    return matches[0]


def parse_points_amount(text: str) -> int | None:
    """A points amount in the customer's words; None without one or for a fraction ("1.5")."""
    folded = _NOT_NUMBERS.sub(" ", fold(text))
    matches = [m for m in _NUMBER.finditer(folded) if _HAS_DIGIT.search(m.group())]
    if not matches:
        return None
    token = _preferred(folded, matches).group()
    value = _value(token.lstrip("-"))
    if value != int(value):
        return None
    return -int(value) if token.startswith("-") else int(value)
