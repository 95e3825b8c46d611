from __future__ import annotations

from datetime import datetime, timedelta, timezone

from actions.rules.care import already_delivered, choose_coupon, codes_in, tip_family, warranty_item
from crm_store.offers import Coupon

NOW = datetime(2026, 11, 22, 8, tzinfo=timezone.utc)


def _coupon(code: str, days_ago: int, status: str = "issued", expires_in: int = 20) -> Coupon:
    issued = NOW - timedelta(days=days_ago)
    return Coupon(1, code, 1, 1, status, issued, NOW + timedelta(days=expires_in), None, None)


OLD, NEW = _coupon("OLDCODE234", 10), _coupon("NEWCODE234", 1)


def test_the_named_coupon_wins_else_the_newest_usable() -> None:
    assert choose_coupon(["OLDCODE234"], [OLD, NEW], NOW) == OLD
    assert choose_coupon([], [OLD, NEW], NOW) == NEW
    used = _coupon("USEDCODE23", 0, status="redeemed")
    expired = _coupon("GONECODE23", 0, expires_in=-1)
    assert choose_coupon([], [OLD, used, expired], NOW) == OLD
    assert choose_coupon([], [used, expired], NOW) is None


def test_a_code_that_is_not_theirs_chooses_nothing() -> None:
    assert choose_coupon(["SOMEONES23"], [OLD, NEW], NOW) is None


def test_codes_are_read_in_any_case_and_only_whole() -> None:
    assert codes_in("用券 newcode234 谢谢") == ["NEWCODE234"]
    assert codes_in("订单 DD202611020387") == []


def test_periods_name_the_product_family_and_the_warranty_item() -> None:
    assert tip_family("KT-090-2026-11") == "kt"
    assert warranty_item("DD202611020387-RV-700") == ("DD202611020387", "RV-700")


def test_a_trigger_counts_as_delivered_only_once_it_was_answered() -> None:
    def trigger(message_id: int) -> dict[str, object]:
        entities = [{"entity": "care_message_id", "value": str(message_id)}]
        intent = {"name": "EXTERNAL_care_message"}
        return {"event": "user", "parse_data": {"intent": intent, "entities": entities}}

    answered = [trigger(7), {"event": "bot", "text": "生日快乐"}, trigger(7)]
    unanswered = [trigger(7), {"event": "action", "name": "action_listen"}, trigger(7)]
    assert already_delivered(answered, 7)
    assert not already_delivered(unanswered, 7)
    assert not already_delivered(answered, 8)
