"""One-time codes against guessing, flooding and enumeration (issue 14), through the actions:
identification (identify_form) and the change of the contact number (update_contact_form)."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

import actions.identity
from actions.contact import ActionUpdateContact, ValidateUpdateContactForm
from actions.identity import ValidateIdentifyForm
from actions.rules.identity import otp_windows
from crm_store.customers import get_customer
from crm_store.db import session_scope
from crm_store.models import LoginCode
from tests.actions.helpers import (
    NOW,
    WANG,
    Run,
    identified,
    responses,
    slots_set,
    tracker,
)

WANG_PHONE, LI_PHONE = "13800138000", "13800138001"
NOBODY = "13912345678"  # no member has this number
STUB_LINE = re.compile(r"SMS stub: one-time code (\d{6}) to (\d{3}\*{4}\d{4})")
MINUTE = timedelta(minutes=1)

Slots = dict[str, Any]


def ask(run: Run, phone: str, *, sender: str = "web-1", now: datetime = NOW) -> tuple[list, Slots]:
    """The customer sends `phone` when identify_form asks for it: what they hear, the slots."""
    state = tracker(
        sender=sender,
        slots={"requested_slot": "identify_phone"},
        extracted={"identify_phone": phone},
        active_loop="identify_form",
    )
    messages, events = run(ValidateIdentifyForm(), state, now)
    return messages, slots_set(events)


def answer(
    run: Run, slots: Slots, text: str, *, sender: str = "web-1", now: datetime = NOW
) -> tuple[list, Slots]:
    """The customer answers the code question: what they hear, the slots after."""
    state = tracker(
        sender=sender,
        slots={**slots, "requested_slot": "otp_code"},
        extracted={"otp_code": text},
        active_loop="identify_form",
    )
    messages, events = run(ValidateIdentifyForm(), state, now)
    return messages, {**slots, **slots_set(events)}


def codes_sent(caplog: pytest.LogCaptureFixture, masked: str) -> list[str]:
    return [code for code, to in STUB_LINE.findall(caplog.text) if to == masked]


def wrong_code(*right: str) -> str:
    return next(code for code in ("000000", "111111", "222222") if code not in right)


def guess_three_times(run: Run, slots: Slots, sender: str, now: datetime) -> list[str]:
    said: list[str] = []
    for _ in range(3):
        messages, slots = answer(run, slots, wrong_code(), sender=sender, now=now)
        said += responses(messages)
    return said


def refused(messages: list, slots: Slots) -> bool:
    """One polite "try later", and the form ends."""
    return responses(messages) == ["utter_otp_rate_limited"] and slots["requested_slot"] is None


def test_guessing_from_new_sessions_is_still_limited_per_phone(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    """Each new anonymous conversation used to get a fresh code with fresh attempts."""
    _, slots = ask(run, WANG_PHONE, sender="attacker-1")
    said = guess_three_times(run, slots, "attacker-1", NOW)
    assert said == ["utter_otp_wrong", "utter_otp_wrong", "utter_otp_locked"]

    # a new session right away, and until the lockout (15 minutes) runs out: no code
    for n, now in enumerate((NOW, NOW + 14 * MINUTE)):
        assert refused(*ask(run, WANG_PHONE, sender=f"attacker-2{n}", now=now))
    assert len(codes_sent(caplog, "138****8000")) == 1

    # then one more code; exhausted again, the lockout doubles to 30 minutes
    later = NOW + 15 * MINUTE
    _, slots = ask(run, WANG_PHONE, sender="attacker-3", now=later)
    assert slots["identify_phone"] == "138****8000"
    guess_three_times(run, slots, "attacker-3", later)
    assert refused(*ask(run, WANG_PHONE, sender="attacker-4", now=later + 29 * MINUTE))
    messages, slots = ask(run, WANG_PHONE, sender="attacker-5", now=later + 30 * MINUTE)
    assert messages == [] and slots["identify_phone"] == "138****8000"


def test_the_owner_who_gets_in_resets_the_backoff(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    _, slots = ask(run, WANG_PHONE, sender="attacker")
    guess_three_times(run, slots, "attacker", NOW)
    later = NOW + 15 * MINUTE
    _, slots = ask(run, WANG_PHONE, sender="owner", now=later)
    messages, _ = answer(
        run, slots, codes_sent(caplog, "138****8000")[-1], sender="owner", now=later
    )
    assert responses(messages) == ["utter_identified"]
    again = later + MINUTE
    _, slots = ask(run, WANG_PHONE, sender="attacker-2", now=again)
    guess_three_times(run, slots, "attacker-2", again)
    # 15 minutes again, not 30: the exhausted code before the success is forgiven
    assert refused(*ask(run, WANG_PHONE, sender="attacker-3", now=again + 14 * MINUTE))
    assert not refused(*ask(run, WANG_PHONE, sender="attacker-4", now=again + 15 * MINUTE))


def test_sms_flooding_one_phone_stops_at_3_in_15_minutes_and_10_a_day(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    asked = 0

    def request(now: datetime) -> bool:
        nonlocal asked
        asked += 1
        return not refused(*ask(run, WANG_PHONE, sender=f"flood-{asked}", now=now))

    # a window counts the codes of its whole period, its first moment included
    assert [request(NOW) for _ in range(4)] == [True, True, True, False]
    assert request(NOW + 15 * MINUTE) is False
    for quarter in (1, 2):
        now = NOW + 16 * quarter * MINUTE
        assert [request(now) for _ in range(4)] == [True, True, True, False]
    now = NOW + 48 * MINUTE
    assert [request(now) for _ in range(3)] == [True, False, False]  # 10 a day
    assert request(NOW + timedelta(days=1)) is False
    assert len(codes_sent(caplog, "138****8000")) == 10
    assert request(NOW + timedelta(days=1) + MINUTE) is True  # the first three left the day


def test_one_conversation_gets_5_codes_an_hour(run: Run) -> None:
    phones = [f"1391234560{n}" for n in range(7)]
    results = [not refused(*ask(run, phone, sender="web-greedy")) for phone in phones[:6]]
    assert results == [True] * 5 + [False]
    assert refused(*ask(run, phones[6], sender="web-greedy", now=NOW + 59 * MINUTE))
    assert not refused(*ask(run, phones[6], sender="web-greedy", now=NOW + 61 * MINUTE))
    assert not refused(*ask(run, phones[6], sender="web-other"))


def test_the_overall_rate_is_configurable(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = otp_windows({"CAREBOT_OTP_PER_MINUTE": "4"})
    monkeypatch.setattr(actions.identity, "WINDOWS", windows)
    phones = [f"1391234561{n}" for n in range(6)]
    results = [not refused(*ask(run, p, sender=f"web-{p}")) for p in phones[:5]]
    assert results == [True] * 4 + [False]
    assert not refused(*ask(run, phones[5], sender="web-late", now=NOW + 2 * MINUTE))


def _replies(messages: list, masked: str) -> list[dict]:
    """What the customer reads, with their own masked number taken out."""
    return [{k: ("<number>" if v == masked else v) for k, v in m.items()} for m in messages]


def _conversation(run: Run, phone: str, sender: str) -> list[Any]:
    """Everything said and slotted in one identification attempt that guesses wrong, then more."""
    masked = f"{phone[:3]}****{phone[-4:]}"
    seen: list[Any] = []
    messages, slots = ask(run, phone, sender=sender)
    seen += [_replies(messages, masked), sorted(slots), slots["identify_phone"] == masked]
    for _ in range(3):
        messages, slots = answer(run, slots, wrong_code(), sender=sender)
        seen += [_replies(messages, masked), sorted(slots)]
    messages, slots = answer(run, slots, wrong_code(), sender=sender)  # "wrong" beyond the lock
    seen.append(_replies(messages, masked))
    messages, slots = ask(run, phone, sender=f"{sender}-again")
    seen += [_replies(messages, masked), sorted(slots)]
    return seen


def test_known_and_unknown_numbers_get_identical_replies(
    run: Run, crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    assert _conversation(run, WANG_PHONE, "web-known") == _conversation(run, NOBODY, "web-nobody")
    assert codes_sent(caplog, "139****5678") == []  # nothing went to the unknown number
    with session_scope(crm) as session:
        rows = session.scalars(select(LoginCode).order_by(LoginCode.id)).all()
        assert [row.customer_id for row in rows] == [WANG, None]  # both count for the limits


def test_any_code_for_an_unknown_number_is_wrong(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even the code that was stored (and never sent) does not identify anybody."""
    codes = iter(["123456"])
    monkeypatch.setattr(actions.identity, "new_otp", lambda _rng: next(codes))
    _, slots = ask(run, NOBODY)
    messages, slots = answer(run, slots, "123456")
    assert responses(messages) == ["utter_otp_wrong"] and "customer_id" not in slots


def test_an_expired_code_fails_and_a_fresh_one_is_sent(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    _, slots = ask(run, WANG_PHONE)
    [first] = codes_sent(caplog, "138****8000")
    messages, slots = answer(run, slots, first, now=NOW + 5 * MINUTE)
    assert responses(messages) == ["utter_otp_expired"] and "customer_id" not in slots
    assert messages[0]["masked_phone"] == "138****8000"
    second = codes_sent(caplog, "138****8000")[-1]
    if second != first:  # one in a million: the fresh code is the same six digits
        messages, _ = answer(run, slots, first, now=NOW + 6 * MINUTE)
        assert responses(messages) == ["utter_otp_wrong"]
    messages, slots = answer(run, slots, second, now=NOW + 6 * MINUTE)
    assert responses(messages) == ["utter_identified"] and slots["customer_id"] == WANG


def test_a_used_code_does_not_work_twice(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    _, asked = ask(run, WANG_PHONE, sender="web-1")
    code = codes_sent(caplog, "138****8000")[-1]
    messages, _ = answer(run, asked, code, sender="web-1")
    assert responses(messages) == ["utter_identified"]

    # the same answer replayed on the slots from before, in that conversation or another one
    for sender in ("web-1", "web-2"):
        messages, slots = answer(run, asked, code, sender=sender)
        assert "customer_id" not in slots and "utter_identified" not in responses(messages)
        assert slots["identify_phone"] is None  # asked for the number again


def test_the_slot_keeps_the_row_id_not_the_code(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    _, slots = ask(run, WANG_PHONE)
    code = codes_sent(caplog, "138****8000")[-1]
    assert set(slots["otp_state"]) == {"code_id", "phone"}
    assert code not in str(slots)


def _change_phone(
    run: Run, caplog: pytest.LogCaptureFixture, phone: str, *, answers: tuple[str, ...] = ()
) -> tuple[list[str], Slots]:
    """WANG asks to change his number to `phone` and answers the code question with `answers`,
    then with the code the number received; what he hears, and the slots after."""
    slots: Slots = {**identified(WANG), "requested_slot": "new_phone"}
    state = tracker(
        sender="demo",
        slots=slots,
        extracted={"new_phone": phone},
        active_loop="update_contact_form",
    )
    messages, events = run(ValidateUpdateContactForm(), state)
    said, slots = responses(messages), {**slots, **slots_set(events)}
    if slots.get("requested_slot", "new_phone") is None:
        return said, slots
    masked = f"{phone[:3]}****{phone[-4:]}"
    for text in (*answers, codes_sent(caplog, masked)[-1]):
        state = tracker(
            sender="demo",
            slots={**slots, "requested_slot": "contact_code"},
            extracted={"contact_code": text},
            active_loop="update_contact_form",
        )
        messages, events = run(ValidateUpdateContactForm(), state)
        said, slots = said + responses(messages), {**slots, **slots_set(events)}
    return said, slots


def test_a_phone_change_needs_the_new_numbers_code_and_notifies_the_old(
    run: Run, crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    said, slots = _change_phone(run, caplog, NOBODY, answers=("000000",))
    assert said == ["utter_otp_wrong"] and slots["contact_code"] == "verified"
    assert codes_sent(caplog, "139****5678") and not codes_sent(caplog, "138****8000")

    with caplog.at_level(logging.INFO):
        confirmed = tracker(sender="demo", slots={**slots, "contact_confirmed": True})
        messages, _ = run(ActionUpdateContact(), confirmed)
    assert responses(messages) == ["utter_contact_updated"]
    with session_scope(crm) as session:
        assert get_customer(session, customer_id=WANG).phone == NOBODY
    notices = [r.getMessage() for r in caplog.records if "notice" in r.getMessage()]
    assert notices == ["SMS stub: notice utter_sms_contact_changed to 138****8000"]


@pytest.mark.parametrize(
    "slots",
    [
        {"new_phone": NOBODY},  # no code at all
        {"new_phone": NOBODY, "contact_code": "verified"},  # a slot is no proof
        {
            "new_phone": NOBODY,
            "contact_code": "verified",
            "otp_state": {"code_id": 1, "phone": NOBODY},
        },
    ],
)
def test_a_phone_change_without_a_verified_code_is_not_stored(
    run: Run, crm: Engine, caplog: pytest.LogCaptureFixture, slots: Slots
) -> None:
    state = tracker(slots={**identified(WANG), **slots, "contact_confirmed": True})
    messages, _ = run(ActionUpdateContact(), state)
    assert responses(messages) == ["utter_contact_unchanged"]
    with session_scope(crm) as session:
        assert get_customer(session, customer_id=WANG).phone == WANG_PHONE
    assert "SMS stub" not in caplog.text


def test_a_code_answered_for_another_number_does_not_change_to_this_one(
    run: Run, crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _, slots = _change_phone(run, caplog, NOBODY)
    forged = {**slots, "new_phone": "13912345699", "contact_confirmed": True}
    forged["otp_state"] = {**slots["otp_state"], "phone": "13912345699"}
    messages, _ = run(ActionUpdateContact(), tracker(sender="demo", slots=forged))
    assert responses(messages) == ["utter_contact_unchanged"]
    with session_scope(crm) as session:
        assert get_customer(session, customer_id=WANG).phone == WANG_PHONE


def test_another_members_number_is_named_taken_only_to_whoever_has_it(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    said, slots = _change_phone(run, caplog, LI_PHONE)
    assert codes_sent(caplog, "138****8001")  # the code went out as for any number
    assert said == ["utter_contact_taken"] and slots["requested_slot"] is None
    messages, _ = run(ActionUpdateContact(), tracker(sender="demo", slots=slots))
    assert messages == []  # the form ended and the customer was already told


def test_a_phone_change_obeys_the_same_limits(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    for n in range(3):  # three codes for that number in 15 minutes, from anywhere
        ask(run, NOBODY, sender=f"web-{n}")
    said, slots = _change_phone(run, caplog, NOBODY)
    assert said == ["utter_otp_rate_limited"] and slots["requested_slot"] is None
    assert slots["new_phone"] is None and codes_sent(caplog, "139****5678") == []


def test_wrong_codes_for_a_new_number_end_the_change(
    run: Run, crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    slots: Slots = {**identified(WANG), "requested_slot": "new_phone"}
    state = tracker(
        sender="demo",
        slots=slots,
        extracted={"new_phone": NOBODY},
        active_loop="update_contact_form",
    )
    slots.update(slots_set(run(ValidateUpdateContactForm(), state)[1]))
    said = []
    for _ in range(3):
        state = tracker(
            sender="demo",
            slots={**slots, "requested_slot": "contact_code"},
            extracted={"contact_code": wrong_code(*codes_sent(caplog, "139****5678"))},
            active_loop="update_contact_form",
        )
        messages, events = run(ValidateUpdateContactForm(), state)
        said += responses(messages)
        slots.update(slots_set(events))
    assert said == ["utter_otp_wrong", "utter_otp_wrong", "utter_otp_locked"]
    assert slots["requested_slot"] is None and slots["new_phone"] is None


def test_no_code_reaches_the_log_but_the_stub_line(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, slots = ask(run, WANG_PHONE)
    answer(run, slots, wrong_code(*codes_sent(caplog, "138****8000")))
    answer(run, slots, "验证码 " + codes_sent(caplog, "138****8000")[-1], now=NOW + 5 * MINUTE)
    ask(run, NOBODY, sender="web-2")
    _change_phone(run, caplog, "13912345600")
    for n in range(3):
        ask(run, LI_PHONE, sender=f"web-li-{n}")
    assert refused(*ask(run, LI_PHONE, sender="web-li-3"))

    stub = [r for r in caplog.records if r.name == "carebot.sms_stub"]
    codes = {code for record in stub for code in STUB_LINE.findall(record.getMessage())}
    assert len(codes) >= 6
    assert all(STUB_LINE.fullmatch(r.getMessage()) or "notice" in r.getMessage() for r in stub)
    others = [r.getMessage() for r in caplog.records if r.name != "carebot.sms_stub"]
    assert others, "the test should see other log lines too"
    leaked = [line for line in others for code, _ in codes if code in line]
    assert leaked == []
