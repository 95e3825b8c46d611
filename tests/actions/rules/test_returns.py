from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from actions.rules.returns import (
    NO_REASON_DAYS,
    QUALITY_DAYS,
    ReturnDecision,
    classify_return_reason,
    delivery_date,
    item_named,
    return_window,
    stops_the_return,
)
from crm_store.orders import Shipment

TODAY = date(2026, 11, 20)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


@pytest.mark.parametrize(
    ("status", "delivered_on", "kind", "decision"),
    [
        ("delivered", TODAY, "changed_mind", ReturnDecision(True, window_days=7, days_left=7)),
        (
            "delivered",
            _days_ago(3),
            "changed_mind",
            ReturnDecision(True, window_days=7, days_left=4),
        ),
        (
            "completed",
            _days_ago(7),
            "changed_mind",
            ReturnDecision(True, window_days=7, days_left=0),
        ),
        (
            "completed",
            _days_ago(8),
            "changed_mind",
            ReturnDecision(False, "expired", window_days=7, days_over=1),
        ),
        ("delivered", _days_ago(8), "quality", ReturnDecision(True, window_days=15, days_left=7)),
        ("delivered", _days_ago(15), "quality", ReturnDecision(True, window_days=15, days_left=0)),
        (
            "completed",
            _days_ago(40),
            "quality",
            ReturnDecision(False, "expired", "warranty_repair", window_days=15, days_over=25),
        ),
        # a delivery scan dated after "today" (clock skew) counts as delivered today
        (
            "delivered",
            TODAY + timedelta(days=1),
            "changed_mind",
            ReturnDecision(True, None, None, 7, 7),
        ),
        (
            "pending",
            None,
            "changed_mind",
            ReturnDecision(False, "not_delivered_yet", "cancel_order"),
        ),
        ("paid", None, "quality", ReturnDecision(False, "not_delivered_yet", "cancel_order")),
        ("shipped", None, "quality", ReturnDecision(False, "not_delivered_yet", "refuse_delivery")),
        ("refunded", _days_ago(2), "quality", ReturnDecision(False, "already_refunded")),
        ("cancelled", None, "changed_mind", ReturnDecision(False, "cancelled")),
        ("delivered", None, "changed_mind", ReturnDecision(False, "no_delivery_date")),
        ("completed", None, "quality", ReturnDecision(False, "no_delivery_date")),
    ],
)
def test_return_window(
    status: str, delivered_on: date | None, kind: str, decision: ReturnDecision
) -> None:
    assert return_window(status, delivered_on, TODAY, kind) == decision


def test_windows_are_the_legal_ones() -> None:
    assert (NO_REASON_DAYS, QUALITY_DAYS) == (7, 15)


def test_unknown_status_is_a_bug() -> None:
    with pytest.raises(ValueError):
        return_window("lost", None, TODAY, "quality")


@pytest.mark.parametrize(
    "text",
    [
        "空气炸锅坏了",
        "用了两天就不工作了",
        "收到的时候外包装破损",
        "净水器漏水",
        "开不了机",
        "有质量问题",
        "插上电没反应",
        "扫地机器人故障，一直报错",
        "杯子碎了",
        "吹風機壞了",
        "發錯貨了，我要的是白色",
        "有异响，噪音特别大",
        "it's broken",
    ],
)
def test_faults_are_quality_returns(text: str) -> None:
    assert classify_return_reason(text) == "quality"


@pytest.mark.parametrize(
    "text",
    [
        "不想要了",
        "买多了",
        "颜色不喜欢",
        "尺寸不合适",
        "东西没坏，就是不喜欢",
        "质量挺好的，就是用不上",
        "不是质量问题，买错型号了",
        "七天无理由退货",
        "",
    ],
)
def test_everything_else_is_a_change_of_mind(text: str) -> None:
    assert classify_return_reason(text) == "changed_mind"


def _scan(status: str, when: datetime) -> Shipment:
    return Shipment(status, "上海", when)


@pytest.mark.parametrize(
    ("shipments", "delivered_on"),
    [
        ((), None),
        ((_scan("picked_up", datetime(2026, 11, 1, tzinfo=timezone.utc)),), None),
        (
            (
                _scan("in_transit", datetime(2026, 11, 1, 3, tzinfo=timezone.utc)),
                _scan("delivered", datetime(2026, 11, 2, 3, tzinfo=timezone.utc)),
            ),
            date(2026, 11, 2),
        ),
        # 17:30 UTC is 01:30 the next day in Shanghai
        (
            (_scan("delivered", datetime(2026, 11, 2, 17, 30, tzinfo=timezone.utc)),),
            date(2026, 11, 3),
        ),
        # re-delivered after an exception: the last delivery counts
        (
            (
                _scan("delivered", datetime(2026, 11, 2, 3, tzinfo=timezone.utc)),
                _scan("exception", datetime(2026, 11, 3, 3, tzinfo=timezone.utc)),
                _scan("delivered", datetime(2026, 11, 5, 3, tzinfo=timezone.utc)),
            ),
            date(2026, 11, 5),
        ),
    ],
)
def test_delivery_date(shipments: tuple[Shipment, ...], delivered_on: date | None) -> None:
    assert delivery_date(shipments, SHANGHAI) == delivered_on


ITEMS = ["空气炸锅", "电热水壶", "咖啡机"]


@pytest.mark.parametrize(
    ("answer", "item"),
    [
        ("咖啡机", "咖啡机"),
        ("那个水壶", "电热水壶"),
        ("第一个", "空气炸锅"),
        ("2", "电热水壶"),
        ("２", "电热水壶"),
        ("退第二件吧", "电热水壶"),
        ("最后一件", "咖啡机"),
        ("第5个", None),
        ("不知道", None),
        ("", None),
    ],
)
def test_an_item_is_picked_by_name_or_position(answer: str, item: str | None) -> None:
    assert item_named(answer, ITEMS) == item


@pytest.mark.parametrize("answer", ["算了，不退了", "不退了", "取消退货", "还是不退了吧", "算了吧"])
def test_calling_the_return_off_is_told_apart_from_a_reason(answer: str) -> None:
    assert stops_the_return(answer)


@pytest.mark.parametrize("answer", ["不想要了", "不喜欢", "质量问题", "不太合适", "买错了"])
def test_a_reason_that_sounds_like_no_is_a_reason(answer: str) -> None:
    assert not stops_the_return(answer)
