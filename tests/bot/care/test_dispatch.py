"""Dispatch: claim, route, trigger, mark; backoff, deferral, isolation, pacing; over real HTTP
against a stub Rasa."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, time, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.bench.care_dispatch import StubRasa
from bot.care.dispatch import (
    DispatchConfig,
    Dispatcher,
    Pacer,
    backoff,
    crash_point_from_env,
)
from bot.care.notify import NotDelivered, Route
from crm_store.campaigns import create_campaign, set_campaign_enabled
from crm_store.clock import Clock, ManualClock
from crm_store.customers import create_customer, set_consent, set_quiet_hours
from crm_store.db import session_scope
from crm_store.orders import NewItem, create_order, upsert_product
from crm_store.outbox import enqueue_care_message, get_care_message
from tests.bot.care.care_helpers import due_messages

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
CONFIG = DispatchConfig(rasa_url="http://rasa.invalid", api_token="t", rate_per_s=1_000)


class Recorder:
    def __init__(self, fail_for: set[int] | None = None) -> None:
        self.sent: list[tuple[Route, str, dict[str, Any]]] = []
        self.fail_for = fail_for or set()

    def __call__(self, route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        if entities["care_message_id"] in self.fail_for:
            raise NotDelivered("Rasa answered 500: DeliveryFailed: template rejected")
        self.sent.append((route, intent, dict(entities)))


def wechat(_engine: Engine, customer_id: int, _clock: Clock) -> Route:
    return Route("wechat", f"o_{customer_id}")


def nowhere(_engine: Engine, _customer_id: int, _clock: Clock) -> None:
    return None


def _state(engine: Engine, message_id: int) -> tuple[str, str | None, datetime, int]:
    with session_scope(engine) as session:
        row = get_care_message(session, message_id=message_id)
    return row.state, row.reason, row.scheduled_at, row.attempts


def test_due_rows_are_triggered_as_care_messages_and_marked_sent(engine: Engine) -> None:
    clock = ManualClock(NOW)
    ids = due_messages(engine, 3, clock=clock)
    sender = Recorder()
    report = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    assert (report.sent, report.failed, report.deferred) == (3, 0, 0)
    assert [(intent, entities) for _, intent, entities in sender.sent] == [
        ("EXTERNAL_care_message", {"care_message_id": message_id}) for message_id in ids
    ]
    assert {_state(engine, message_id)[0] for message_id in ids} == {"sent"}
    assert Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once() == (
        type(report)()
    )


def test_delivery_follow_up_starts_the_survey_about_the_product(engine: Engine) -> None:
    clock = ManualClock(NOW)
    with session_scope(engine) as session:
        upsert_product(
            session,
            sku="AF-01",
            name="空气炸锅",
            category="厨房电器",
            price_cents=39_900,
            warranty_months=12,
        )
        customer = create_customer(session, name="王小明", clock=clock)
        order = create_order(session, customer_id=customer.id, items=[NewItem("AF-01")])
        create_campaign(
            session, key="delivery_follow_up", name="回访", kind="follow_up", category="care"
        )
        message, _ = enqueue_care_message(
            session,
            customer_id=customer.id,
            campaign_key="delivery_follow_up",
            period=order.id,
            channel="wechat",
            clock=clock,
        )
    sender = Recorder()
    Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    assert [(intent, entities) for _, intent, entities in sender.sent] == [
        ("EXTERNAL_survey", {"care_message_id": message.id, "product": "空气炸锅"})
    ]


def test_a_refused_trigger_fails_with_its_reason_and_backs_off(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    dispatcher = Dispatcher(
        engine, CONFIG, clock=clock, router=wechat, sender=Recorder(fail_for={message_id})
    )
    assert dispatcher.run_once().failed == 1
    state, reason, scheduled_at, attempts = _state(engine, message_id)
    assert (state, attempts, scheduled_at) == ("failed", 1, NOW + timedelta(minutes=1))
    assert reason == "Rasa answered 500: DeliveryFailed: template rejected"
    assert dispatcher.run_once().handled == 0  # not before its retry time
    clock.advance(timedelta(minutes=1))
    assert dispatcher.run_once().failed == 1
    assert _state(engine, message_id)[2] == clock() + timedelta(minutes=2)


def refusal(errcode: int, errmsg: str) -> str:
    """What the dispatcher reads when Rasa's WeChat output could not deliver (a 500)."""
    return (
        'Rasa answered 500: {"status":"failure","message":"An unexpected error occurred. Error: '
        f'wechat delivery to o_1 failed: WeChat API error {errcode}: {errmsg}"}}'
    )


class Refusing:
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        raise NotDelivered(self.reason)


@pytest.mark.parametrize(
    ("errcode", "errmsg"),
    [
        (43004, "require subscribe"),
        (45015, "response out of time limit or subscription is canceled"),
        (45047, "out of response count limit"),
    ],
)
def test_a_follower_wechat_does_not_reach_now_waits_like_an_unreachable_customer(
    engine: Engine, errcode: int, errmsg: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    sender = Refusing(refusal(errcode, errmsg))
    report = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    assert (report.deferred, report.failed) == (1, 0)
    assert _state(engine, message_id) == (
        "pending",
        f"unreachable: WeChat {errcode}",
        NOW + timedelta(minutes=30),
        0,
    )
    assert {record.levelname for record in caplog.records} <= {"INFO", "DEBUG"}


def test_wechats_daily_quota_holds_the_message_until_midnight_in_china(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(NOW)  # 10:00 in Shanghai on 2 November
    [message_id] = due_messages(engine, 1, clock=clock)
    sender = Refusing(refusal(45009, "reach max api daily quota limit"))
    report = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    midnight = datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc)  # 00:00 on the 3rd in Shanghai
    assert (report.deferred, report.failed) == (1, 0)
    assert _state(engine, message_id) == ("pending", "daily_quota: WeChat 45009", midnight, 0)
    assert [r.levelname for r in caplog.records if "daily quota" in r.getMessage()] == ["WARNING"]


def test_an_unexpected_refusal_fails_and_says_so_at_warning(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    sender = Refusing(refusal(40003, "invalid openid"))
    report = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    assert report.failed == 1
    state, reason, _, attempts = _state(engine, message_id)
    assert (state, attempts) == ("failed", 1) and "40003" in (reason or "")
    [line] = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert line.levelname == "WARNING" and f"care message {message_id}" in line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_switched_off_campaign_holds_its_rows_until_it_is_on_again(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    with session_scope(engine) as session:
        set_campaign_enabled(session, key="care_tip", enabled=False, actor="staff:1")
    sender = Recorder()
    dispatcher = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender)
    assert dispatcher.run_once().deferred == 1 and sender.sent == []
    assert _state(engine, message_id) == (
        "pending",
        "campaign_off",
        NOW + timedelta(minutes=30),
        0,
    )
    with session_scope(engine) as session:
        set_campaign_enabled(session, key="care_tip", enabled=True, actor="staff:1")
    clock.advance(timedelta(minutes=30))
    assert dispatcher.run_once().sent == 1
    assert _state(engine, message_id)[0] == "sent"


def test_backoff_doubles_up_to_its_cap() -> None:
    base, cap = timedelta(minutes=1), timedelta(minutes=5)
    assert [backoff(n, base, cap).seconds // 60 for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_an_unreachable_customer_waits_pending_without_spending_attempts(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    report = Dispatcher(engine, CONFIG, clock=clock, router=nowhere, sender=Recorder()).run_once()
    assert report.deferred == 1
    assert _state(engine, message_id) == ("pending", "unreachable", NOW + timedelta(minutes=30), 0)


def test_one_customers_error_does_not_stop_the_batch(engine: Engine) -> None:
    clock = ManualClock(NOW)
    first, second = due_messages(engine, 2, clock=clock)

    def router(engine: Engine, customer_id: int, clock: Clock) -> Route:
        if customer_id == 1:
            raise RuntimeError("identity table unreadable")
        return wechat(engine, customer_id, clock)

    report = Dispatcher(engine, CONFIG, clock=clock, router=router, sender=Recorder()).run_once()
    assert (report.sent, report.failed) == (1, 1)
    assert _state(engine, first)[:2] == ("failed", "RuntimeError: identity table unreadable")
    assert _state(engine, second)[0] == "sent"


def test_inside_the_quiet_hours_the_row_waits_for_their_end(engine: Engine) -> None:
    """A retry can fall due at night: the customer's quiet hours still hold (22:00-08:00)."""
    night = ManualClock(datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc))  # 23:00 Shanghai
    [message_id] = due_messages(engine, 1, clock=night)
    with session_scope(engine) as session:
        set_quiet_hours(session, customer_id=1, quiet_hours=(time(22), time(8)))
    sender = Recorder()
    report = Dispatcher(engine, CONFIG, clock=night, router=wechat, sender=sender).run_once()
    morning = datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc)  # 08:00 Shanghai
    assert (report.deferred, sender.sent) == (1, [])
    assert _state(engine, message_id) == ("pending", "quiet_hours", morning, 0)


def test_consent_withdrawn_after_planning_skips_the_row(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    with session_scope(engine) as session:
        set_consent(session, customer_id=1, category="care", granted=False, source="wechat")
    sender = Recorder()
    report = Dispatcher(engine, CONFIG, clock=clock, router=wechat, sender=sender).run_once()
    assert (report.skipped, sender.sent) == (1, [])
    assert _state(engine, message_id)[:2] == ("skipped", "no_consent")


def test_the_pacer_keeps_to_the_rate() -> None:
    now, slept = [100.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(rate_per_s=4, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not saved up for a burst
    pacer.wait()
    pacer.wait()
    assert slept[-1] == 0.25


def test_dispatch_over_http_reaches_rasas_trigger_intent(engine: Engine) -> None:
    clock = ManualClock(NOW)
    ids = due_messages(engine, 2, clock=clock)
    with StubRasa() as rasa:
        config = DispatchConfig(rasa_url=rasa.url, api_token="secret", rate_per_s=1_000)
        assert Dispatcher(engine, config, clock=clock).run_once().sent == 2
    assert [(t.conversation_id, t.output_channel, t.intent) for t in rasa.triggers] == [
        ("o_care_tip_0", "wechat", "EXTERNAL_care_message"),
        ("o_care_tip_1", "wechat", "EXTERNAL_care_message"),
    ]
    assert rasa.delivered() == ids


def test_a_5xx_from_rasa_is_a_failure_with_the_answer(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    with StubRasa(status=500) as rasa:
        config = DispatchConfig(rasa_url=rasa.url, api_token="secret", rate_per_s=1_000)
        assert Dispatcher(engine, config, clock=clock).run_once().failed == 1
    assert _state(engine, message_id)[1] == "Rasa answered 500: {}"


def test_rasa_down_is_a_failure_too(engine: Engine) -> None:
    clock = ManualClock(NOW)
    [message_id] = due_messages(engine, 1, clock=clock)
    config = DispatchConfig(rasa_url="http://127.0.0.1:9", api_token="t", rate_per_s=1_000)
    assert Dispatcher(engine, config, clock=clock).run_once().failed == 1
    assert (_state(engine, message_id)[1] or "").startswith("Rasa is unreachable")


def test_the_crash_switch_only_takes_known_points() -> None:
    assert crash_point_from_env({}) is None
    assert crash_point_from_env({"CAREBOT_CRASH_AT": "after_send"}) == "after_send"
    with pytest.raises(ValueError, match="CAREBOT_CRASH_AT"):
        crash_point_from_env({"CAREBOT_CRASH_AT": "later"})
