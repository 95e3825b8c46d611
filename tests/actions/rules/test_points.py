from __future__ import annotations

import pytest

from actions.rules.points import (
    MAX_REDEMPTION,
    TIER_THRESHOLDS,
    RedemptionDecision,
    TierProgress,
    next_tier_progress,
    parse_points_amount,
    redemption_check,
)
from crm_store.demo import tier_for_spend
from crm_store.models import TIERS


def test_thresholds_cover_every_tier_in_order() -> None:
    assert tuple(TIER_THRESHOLDS) == TIERS
    assert list(TIER_THRESHOLDS.values()) == sorted(TIER_THRESHOLDS.values())


@pytest.mark.parametrize("tier", TIERS)
def test_thresholds_agree_with_the_demo_data_rule(tier: str) -> None:
    threshold = TIER_THRESHOLDS[tier]
    assert tier_for_spend(threshold) == tier
    if threshold:
        assert tier_for_spend(threshold - 1) == TIERS[TIERS.index(tier) - 1]


@pytest.mark.parametrize(
    ("tier", "spend_cents", "progress"),
    [
        ("普通", 0, TierProgress("银卡", 200_000)),
        ("普通", 150_000, TierProgress("银卡", 50_000)),
        ("银卡", 350_000, TierProgress("金卡", 450_000)),
        ("金卡", 1_999_999, TierProgress("钻石", 1)),
        ("金卡", 2_500_000, TierProgress("钻石", 0)),  # qualifies, not yet reviewed
        ("钻石", 5_000_000, None),
        ("钻石", 0, None),
    ],
)
def test_next_tier_progress(tier: str, spend_cents: int, progress: TierProgress | None) -> None:
    assert next_tier_progress(tier, spend_cents) == progress


def test_unknown_tier_is_a_bug() -> None:
    with pytest.raises(ValueError):
        next_tier_progress("白金", 0)


@pytest.mark.parametrize(
    ("balance", "requested", "decision"),
    [
        (12_990, 500, RedemptionDecision(True)),
        (500, 500, RedemptionDecision(True)),
        (899, 1000, RedemptionDecision(False, "short", 101)),
        (0, 1, RedemptionDecision(False, "short", 1)),
        (12_990, 0, RedemptionDecision(False, "not_positive")),
        (12_990, -500, RedemptionDecision(False, "not_positive")),
        (500_000, MAX_REDEMPTION, RedemptionDecision(True)),
        (500_000, MAX_REDEMPTION + 1, RedemptionDecision(False, "too_many")),
        (10, 200_000, RedemptionDecision(False, "short", 199_990)),
        (150_000, 200_000, RedemptionDecision(False, "too_many")),
        (150_000, 120_000, RedemptionDecision(False, "too_many")),
        (MAX_REDEMPTION - 1, MAX_REDEMPTION, RedemptionDecision(False, "short", 1)),
    ],
)
def test_redemption_check(balance: int, requested: int, decision: RedemptionDecision) -> None:
    assert redemption_check(balance, requested) == decision


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("500", 500),
        ("兑换500积分", 500),
        ("我想用 500 积分", 500),
        ("五百积分", 500),
        ("1千", 1000),
        ("1千积分", 1000),
        ("一千五百", 1500),
        ("一千五", 1500),  # colloquial: not 1005
        ("换两万五", 25000),
        ("一千零五十", 1050),
        ("三百五十", 350),
        ("十五", 15),
        ("十万积分", 100_000),
        ("一万二千", 12_000),
        ("1.5万", 15_000),
        ("1万5", 15_000),
        ("1万500", 10_500),
        ("2k积分", 2000),
        ("5w", 50_000),
        ("12,990", 12_990),
        ("兌換兩千積分", 2000),
        ("兑换１０００积分", 1000),
        ("壹仟伍佰", 1500),
        ("帮我兑换一下500积分", 500),
        ("十分感谢，兑换300", 300),
        ("我有12990积分，想兑换500", 500),
        ("兑换500，我还有12990积分吧", 500),
        ("我有899积分", 899),
        ("兑换0积分", 0),
        ("兑换-500积分", -500),
    ],
)
def test_parse_points_amount(text: str, amount: int) -> None:
    assert parse_points_amount(text) == amount


@pytest.mark.parametrize(
    "text",
    ["", "积分还剩多少", "我想兑换一下", "用积分换一个杯子", "千万别乱扣", "万一不够呢", "1.5"],
)
def test_no_amount_gives_none(text: str) -> None:
    assert parse_points_amount(text) is None
