"""Whether an order can still be returned, and what kind of return the customer is asking for.

Windows count calendar days from the day of delivery (the day after delivery is day 1), so a
parcel delivered on the 1st can be returned without a reason up to and including the 8th:

| reason_kind   | window                                             |
| ------------- | -------------------------------------------------- |
| "quality"     | 15 days: a fault the seller answers for            |
| anything else | 7 days: 七天无理由退货                              |

`return_window` refusals (`ReturnDecision.reason`) and what the customer can do instead:

| order status         | reason              | alternative                                 |
| -------------------- | ------------------- | ------------------------------------------- |
| pending, paid        | "not_delivered_yet" | "cancel_order"                              |
| shipped              | "not_delivered_yet" | "refuse_delivery" (拒收)                     |
| refunded             | "already_refunded"  | -                                           |
| cancelled            | "cancelled"         | -                                           |
| delivered, completed | "no_delivery_date"  | - (no delivery scan on record: an agent)    |
| delivered, completed | "expired"           | "warranty_repair" for quality, otherwise -  |
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Literal

from actions.rules._text import contains_any, fold
from crm_store.models import ORDER_STATUSES
from crm_store.orders import Shipment

NO_REASON_DAYS = 7
QUALITY_DAYS = 15

ReturnRefusal = Literal[
    "not_delivered_yet", "expired", "already_refunded", "cancelled", "no_delivery_date"
]
Alternative = Literal["cancel_order", "refuse_delivery", "warranty_repair"]
ReasonKind = Literal["quality", "changed_mind"]

_QUALITY_WORDS = (
    "坏",
    "质量",
    "故障",
    "破损",
    "损坏",
    "漏水",
    "漏电",
    "不工作",
    "不能用",
    "用不了",
    "没法用",
    "开不了机",
    "开不开",
    "无法开机",
    "不通电",
    "没反应",
    "不转",
    "不加热",
    "不制热",
    "充不进电",
    "异响",
    "噪音",
    "异味",
    "冒烟",
    "烧了",
    "短路",
    "裂",
    "碎",
    "划痕",
    "瑕疵",
    "次品",
    "假货",
    "锈",
    "掉漆",
    "变形",
    "缺件",
    "少件",
    "少配件",
    "发错",
    "错发",
    "broken",
    "defective",
    "faulty",
    "doesn't work",
    "not working",
)
# Said to rule a fault out: "没坏，就是不喜欢" is a change of mind.
_NOT_QUALITY = (
    "没坏",
    "没有坏",
    "不是坏",
    "没有质量问题",
    "没质量问题",
    "不是质量问题",
    "质量没问题",
    "质量没有问题",
    "质量很好",
    "质量挺好",
    "质量不错",
    "质量还行",
    "not broken",
)


@dataclass(frozen=True)
class ReturnDecision:
    allowed: bool
    reason: ReturnRefusal | None = None
    alternative: Alternative | None = None
    window_days: int | None = None  # the window that applied, once delivered
    days_left: int | None = None  # allowed: days after today still inside the window
    days_over: int | None = None  # "expired": days past the window


def classify_return_reason(text: str) -> ReasonKind:
    """ "quality" for any fault the seller answers for (broken, faulty, wrong or missing parts)."""
    folded = fold(text)
    for phrase in _NOT_QUALITY:
        folded = folded.replace(phrase, " ")
    return "quality" if contains_any(folded, _QUALITY_WORDS) else "changed_mind"


def delivery_date(shipments: Sequence[Shipment], tz: tzinfo) -> date | None:
    """The local date of the last "delivered" scan (pass the shop's zone,
    crm_store.clock.BUSINESS_TZ)."""
    scans = [s.occurred_at for s in shipments if s.status == "delivered"]
    return max(scans).astimezone(tz).date() if scans else None


def _before_delivery(order_status: str) -> ReturnDecision | None:
    if order_status in ("pending", "paid"):
        return ReturnDecision(False, "not_delivered_yet", "cancel_order")
    if order_status == "shipped":
        return ReturnDecision(False, "not_delivered_yet", "refuse_delivery")
    if order_status == "refunded":
        return ReturnDecision(False, "already_refunded")
    if order_status == "cancelled":
        return ReturnDecision(False, "cancelled")
    return None


def return_window(
    order_status: str, delivered_on: date | None, today: date, reason_kind: str
) -> ReturnDecision:
    """Whether a return can be opened today; see the tables in the module docstring."""
    if order_status not in ORDER_STATUSES:
        raise ValueError(f"unknown order status {order_status!r}")
    refusal = _before_delivery(order_status)
    if refusal is not None:
        return refusal
    if delivered_on is None:
        return ReturnDecision(False, "no_delivery_date")
    quality = reason_kind == "quality"
    window = QUALITY_DAYS if quality else NO_REASON_DAYS
    elapsed = max(0, (today - delivered_on).days)
    if elapsed <= window:
        return ReturnDecision(True, window_days=window, days_left=window - elapsed)
    return ReturnDecision(
        False,
        "expired",
        "warranty_repair" if quality else None,
        window_days=window,
        days_over=elapsed - window,
    )


_CN_NUMBERS = {
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_POSITION = re.compile(
    r"^(?:我要|要|就|选|退|换|退换)?第?(\d{1,2}|[一二两三四五六七八九])(?:个|件|样|项|款)?(?:吧|的|了)?$"
)
_LAST = re.compile(r"^(?:我要|要|就|选|退|换|退换)?最后(?:一|那)?(?:个|件|样|项|款)?(?:吧|的|了)?$")


def _shared_run(a: str, b: str) -> int:
    """The length of the longest run of characters `a` and `b` share."""
    return max(
        (
            end - start
            for start in range(len(a))
            for end in range(start + 1, len(a) + 1)
            if a[start:end] in b
        ),
        default=0,
    )


def _named_in(text: str, names: Sequence[str]) -> str | None:
    """The one item the answer names: whole, or by the longest shared run of 2+ characters."""
    scores = sorted(
        (
            (len(name) + 100 if fold(name) in text else _shared_run(text, fold(name)), name)
            for name in names
        ),
        reverse=True,
    )
    if not scores or scores[0][0] < 2 or (len(scores) > 1 and scores[1][0] == scores[0][0]):
        return None
    return scores[0][1]


def item_named(answer: str, names: Sequence[str]) -> str | None:
    """Which of the order's items (listed to the customer in this order, numbered on WeChat) an
    answer picks: its name or part of it, its position ("2", "第二个", "最后一件")."""
    text = re.sub(r"[\s,.!?，。！？、]+", "", fold(answer))
    if not text:
        return None
    by_name = _named_in(text, names)
    if by_name is not None:
        return by_name
    position = _POSITION.match(text)
    if position:
        token = position.group(1)
        number = int(token) if token.isdigit() else _CN_NUMBERS[token]
        return names[number - 1] if 1 <= number <= len(names) else None
    return names[-1] if names and _LAST.match(text) else None


_STOP = re.compile(
    r"^(?:那|那就|还是)?(?:算了|不退了|不退|不换了|不用了|不办了|先不退了?|取消(?:退货|退换|申请)?|不要退了)"
    r"(?:吧|了|啊|呀)?(?:不退了|谢谢)?$"
)


def stops_the_return(answer: str) -> bool:
    """Whether an answer to "why return it?" calls the return off ("算了，不退了") rather than
    giving a reason ("不想要了" is a reason)."""
    return bool(_STOP.match(re.sub(r"[\s,.!?，。！？、]+", "", fold(answer))))
