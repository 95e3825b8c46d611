from __future__ import annotations

import pytest

from actions.rules.complaints import (
    STRONG_ANGER,
    complaint_priority,
    complaint_sentiment,
    mentions_external_threat,
)
from crm_store.models import PRIORITIES, TIERS


@pytest.mark.parametrize(
    ("text", "sentiment"),
    [
        ("你好，我的空气炸锅有点问题", 0.0),
        ("我要投诉", -0.2),
        ("東西壞了，非常失望", -0.4),
        ("垃圾垃圾垃圾", -0.4),  # repetition counts once
        ("太差了", -0.5),  # 太差 plus the intensifier 太
        ("你们是骗子吧", -0.4),
        ("不给我退钱就打12315", -0.9),
        ("太差了，垃圾产品，气死我了！！！", -1.0),
        ("再也不买你们家的东西了!!!", -0.8),
    ],
)
def test_complaint_sentiment(text: str, sentiment: float) -> None:
    assert complaint_sentiment(text) == pytest.approx(sentiment)


@pytest.mark.parametrize(
    "text", ["", "谢谢", "太差劲了垃圾骗子气死我了再也不买了！！！退钱", "打12315投诉你们"]
)
def test_sentiment_stays_in_range(text: str) -> None:
    assert -1.0 <= complaint_sentiment(text) <= 0.0


@pytest.mark.parametrize(
    ("text", "threat"),
    [
        ("再不处理我就打12315", True),
        ("我要去消协投诉", True),
        ("我要去消費者協會", True),
        ("信不信我发到网上曝光你们", True),
        ("我认识记者", True),
        ("我会找律师起诉", True),
        ("等到315晚会再说", True),
        ("我花了1315元", False),
        ("订单DD202612315001", False),
        ("太差了，我要投诉", False),
    ],
)
def test_mentions_external_threat(text: str, threat: bool) -> None:
    assert mentions_external_threat(text) is threat


@pytest.mark.parametrize(
    ("tier", "sentiment", "threat", "priority"),
    [
        ("普通", 0.0, False, "normal"),
        ("银卡", -0.5, False, "normal"),
        ("普通", STRONG_ANGER, False, "high"),
        ("银卡", -1.0, False, "high"),
        ("金卡", 0.0, False, "high"),
        ("金卡", -1.0, False, "high"),
        ("钻石", 0.0, False, "high"),
        ("钻石", -0.5, False, "high"),
        ("钻石", STRONG_ANGER, False, "urgent"),
        ("普通", 0.0, True, "urgent"),
        ("银卡", -0.2, True, "urgent"),
    ],
)
def test_complaint_priority(tier: str, sentiment: float, threat: bool, priority: str) -> None:
    assert complaint_priority(tier, sentiment, threat=threat) == priority


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sentiment", [0.0, -0.3, -0.6, -1.0])
def test_priority_is_a_crm_priority_and_never_low(tier: str, sentiment: float) -> None:
    assert complaint_priority(tier, sentiment) in PRIORITIES[1:]


def test_sentiment_and_threat_together_route_a_real_message() -> None:
    text = "东西坏了三次都没人管，太差劲了！！！再不退钱我就去12315"
    sentiment = complaint_sentiment(text)
    assert sentiment <= STRONG_ANGER
    assert complaint_priority("普通", sentiment) == "high"
    assert complaint_priority("普通", sentiment, threat=mentions_external_threat(text)) == "urgent"
