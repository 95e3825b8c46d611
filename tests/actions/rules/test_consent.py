from __future__ import annotations

import pytest

from actions.rules.consent import describe_consents, parse_consent_change
from crm_store.models import CATEGORIES

ALL_OFF = dict.fromkeys(CATEGORIES, False)
ALL_ON = dict.fromkeys(CATEGORIES, True)


@pytest.mark.parametrize(
    ("text", "intent", "change"),
    [
        # one category, said plainly
        ("退订优惠", "unsubscribe", {"offer": False}),
        ("不要再给我发广告了", "unsubscribe", {"offer": False}),
        ("優惠券不要再發了", "unsubscribe", {"offer": False}),
        ("促销短信太多了", "unsubscribe", {"offer": False}),  # no verb: the intent decides
        ("满意度调查太烦了，别再发了", "unsubscribe", {"survey": False}),
        ("取消订阅问卷", "unsubscribe", {"survey": False}),
        ("回访电话就不用了", "unsubscribe", {"follow_up": False}),
        ("生日祝福别发了", "unsubscribe", {"care": False}),
        ("生日优惠券别发了", "unsubscribe", {"offer": False}),  # a 生日券 is an offer
        ("订阅优惠", "subscribe", {"offer": True}),
        ("訂閱優惠活動", "subscribe", {"offer": True}),
        ("我想收到节日问候", "subscribe", {"care": True}),
        ("重新订阅关怀和问候", "subscribe", {"care": True}),
        # several clauses
        ("退订优惠，保留回访", "unsubscribe", {"offer": False, "follow_up": True}),
        ("退订优惠保留回访", "unsubscribe", {"offer": False, "follow_up": True}),
        ("退訂優惠；保留回訪", "unsubscribe", {"offer": False, "follow_up": True}),
        ("优惠不保留，回访可以", "unsubscribe", {"offer": False, "follow_up": True}),
        ("生日祝福还是要的，广告就算了", "unsubscribe", {"care": True, "offer": False}),
        ("优惠、问卷都退订", "unsubscribe", {"offer": False, "survey": False}),
        ("优惠，问卷，都退订", "unsubscribe", {"offer": False, "survey": False}),
        ("退订，优惠和问卷", "unsubscribe", {"offer": False, "survey": False}),
        ("退订优惠，其他不变", "unsubscribe", {"offer": False}),
        ("只退订优惠", "unsubscribe", {"offer": False}),
        # the rest, all, only, except
        ("不要优惠了，其他的都可以", "unsubscribe", {**ALL_ON, "offer": False}),
        ("不要优惠了其它都行", "unsubscribe", {**ALL_ON, "offer": False}),
        ("全部退订，但保留回访", "unsubscribe", {**ALL_OFF, "follow_up": True}),
        ("只保留回访", "unsubscribe", {**ALL_OFF, "follow_up": True}),
        ("仅保留关怀消息，其余都退订", "unsubscribe", {**ALL_OFF, "care": True}),
        ("除了回访都退订", "unsubscribe", {**ALL_OFF, "follow_up": True}),
        ("除了回访，其他都退订", "unsubscribe", {**ALL_OFF, "follow_up": True}),
        ("都退订了，除了回访", "unsubscribe", {**ALL_OFF, "follow_up": True}),
        # no category: everything
        ("全部退订", "unsubscribe", ALL_OFF),
        ("别再给我发消息了", "unsubscribe", ALL_OFF),
        ("TD", "unsubscribe", ALL_OFF),
        ("ｔｄ", "unsubscribe", ALL_OFF),
        ("回复TD退订", "unsubscribe", ALL_OFF),
        ("烦死了，以后什么都别发", "unsubscribe", ALL_OFF),
        ("我要订阅", "subscribe", ALL_ON),
        ("取消退订", "subscribe", ALL_ON),
        # English
        ("stop", "unsubscribe", ALL_OFF),
        ("STOP please", "unsubscribe", ALL_OFF),
        ("no more surveys please", "unsubscribe", {"survey": False}),
        (
            "unsubscribe from promotions but keep surveys",
            "unsubscribe",
            {"offer": False, "survey": True},
        ),
        ("subscribe to offers", "subscribe", {"offer": True}),
        # nothing said about messages
        ("好的", "affirm", {}),
        ("我的订单到哪了", "order_status", {}),
    ],
)
def test_parse_consent_change(text: str, intent: str, change: dict[str, bool]) -> None:
    assert parse_consent_change(text, intent) == change


def test_result_keys_follow_categories_order() -> None:
    change = parse_consent_change("保留回访，退订优惠，问卷也不要", "unsubscribe")
    assert list(change) == ["follow_up", "survey", "offer"]


@pytest.mark.parametrize(
    ("consents", "on", "off"),
    [
        ({}, [], []),
        (ALL_ON, list(CATEGORIES), []),
        ({"offer": False, "care": True}, ["care"], ["offer"]),
        (
            {"survey": False, "follow_up": True, "offer": False, "care": True},
            ["care", "follow_up"],
            ["survey", "offer"],
        ),
        ({"sms": True, "offer": False}, [], ["offer"]),  # unknown keys are ignored
    ],
)
def test_describe_consents(consents: dict[str, bool], on: list[str], off: list[str]) -> None:
    assert describe_consents(consents) == (on, off)
