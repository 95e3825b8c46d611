from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from actions.rules.identity import (
    OTP_ATTEMPTS,
    OTP_VALIDITY,
    OtpState,
    check_otp,
    extract_otp,
    issue_otp,
    mask_mobile,
    new_otp,
    normalize_mobile,
    otp_digest,
    otp_matches,
    spend_attempt,
)

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
SALT = "c0ffee"


@pytest.mark.parametrize(
    ("text", "mobile"),
    [
        ("13800138000", "13800138000"),
        ("我的手机号是13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("手机：１３８００１３８０００", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("86-13800138000", "13800138000"),
        ("008613800138000", "13800138000"),
        ("号码是19912345678谢谢", "19912345678"),
        ("13800138000 2个订单", "13800138000"),
        ("订单DD202611020387，手机15012345678", "15012345678"),
    ],
)
def test_a_mobile_number_is_found_in_free_text(text: str, mobile: str) -> None:
    assert normalize_mobile(text) == mobile


@pytest.mark.parametrize(
    "text",
    [
        "",
        "我忘了手机号",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "12800138000",  # 12x is not a mobile prefix
        "10086",
        "23800138000",
        "DD202611020387",
        "138 0013 8000 3",  # one digit too many once joined
        "028-12345678",  # a landline
    ],
)
def test_no_or_malformed_number_gives_none(text: str) -> None:
    assert normalize_mobile(text) is None


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+86 138-0013-8000", "138****8000"),
        ("19912345678", "199****5678"),
        ("12345", "****"),
    ],
)
def test_mask_mobile_keeps_prefix_and_last_four(phone: str, masked: str) -> None:
    assert mask_mobile(phone) == masked


def test_new_otp_is_six_digits_keeping_leading_zeros() -> None:
    codes = [new_otp(random.Random(seed)) for seed in range(200)]
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert any(code.startswith("0") for code in codes)
    assert new_otp(random.Random(7)) == new_otp(random.Random(7))


def test_digest_depends_on_code_and_salt() -> None:
    digest = otp_digest("123456", SALT)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != otp_digest("123457", SALT)
    assert digest != otp_digest("123456", "other")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("123456", "123456"),
        ("验证码是 123456", "123456"),
        ("１２３４５６", "123456"),
        ("123 456", "123456"),
        ("是012345吧", "012345"),
        ("12345", None),
        ("1234567", None),
        ("我没收到验证码", None),
    ],
)
def test_extract_otp(text: str, code: str | None) -> None:
    assert extract_otp(text) == code


@pytest.mark.parametrize(
    ("text", "matches"),
    [("654321", True), ("验证码６５４３２１", True), ("654322", False), ("六五四三二一", False)],
)
def test_otp_matches(text: str, matches: bool) -> None:
    assert otp_matches(text, otp_digest("654321", SALT), SALT) is matches


def _state(attempts_left: int = OTP_ATTEMPTS) -> OtpState:
    issued = issue_otp("654321", SALT, NOW)
    return OtpState(issued.digest, issued.salt, issued.expires_at, attempts_left)


@pytest.mark.parametrize(
    ("state", "text", "now", "verdict"),
    [
        (_state(), "654321", NOW, "ok"),
        (_state(), "验证码是６５４３２１", NOW + timedelta(minutes=4, seconds=59), "ok"),
        (_state(), "654321", NOW + OTP_VALIDITY, "expired"),
        (_state(), "111111", NOW + timedelta(hours=1), "expired"),
        (_state(), "111111", NOW, "wrong"),
        (_state(), "我没收到", NOW, "wrong"),
        (_state(2), "111111", NOW, "wrong"),
        (_state(1), "111111", NOW, "locked"),
        (_state(1), "654321", NOW, "ok"),
        (_state(0), "654321", NOW, "locked"),
        (_state(0), "654321", NOW + timedelta(hours=1), "locked"),
    ],
)
def test_check_otp(state: OtpState, text: str, now: datetime, verdict: str) -> None:
    assert check_otp(state, text, now) == verdict


def test_three_wrong_answers_lock_the_code() -> None:
    state, verdicts = issue_otp("654321", SALT, NOW), []
    for _ in range(OTP_ATTEMPTS + 1):
        verdicts.append(check_otp(state, "000000", NOW))
        state = spend_attempt(state)
    assert verdicts == ["wrong", "wrong", "locked", "locked"]
    assert check_otp(state, "654321", NOW) == "locked"
    assert state.attempts_left == 0


def test_slot_round_trip() -> None:
    state = issue_otp("654321", SALT, NOW)
    assert state.expires_at == NOW + OTP_VALIDITY
    assert OtpState.from_slot(state.to_slot()) == state


def test_naive_slot_time_is_read_as_utc() -> None:
    slot = {**_state().to_slot(), "expires_at": "2026-11-02T08:05:00"}
    restored = OtpState.from_slot(slot)
    assert restored is not None and restored.expires_at == NOW + OTP_VALIDITY


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "654321",
        [],
        {},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00+00:00"},
        {"digest": "x", "salt": "y", "expires_at": "tomorrow", "attempts_left": 3},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": "3"},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": True},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": -1},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": 9},
        {"digest": 1, "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": 3},
        {"digest": "x", "salt": "y", "expires_at": 1793606700, "attempts_left": 3},
    ],
)
def test_junk_in_the_slot_gives_none(value: object) -> None:
    assert OtpState.from_slot(value) is None
