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
    """The local date of the last "delivered" scan (pass the shop's zone, Asia/Shanghai)."""
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
