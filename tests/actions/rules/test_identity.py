from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from actions.rules.identity import (
    CLIENT_WINDOWS,
    LOCKOUT_FIRST,
    LOCKOUT_MEMORY,
    PHONE_WINDOWS,
    PendingCode,
    Window,
    extract_otp,
    lockout_until,
    mask_mobile,
    new_otp,
    normalize_mobile,
    otp_windows,
    send_refusal,
)
from crm_store.login_codes import SpentCode

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)


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


WINDOWS = otp_windows({})
MINUTE = timedelta(minutes=1)


def _counts(**overrides: int) -> dict[Window, int]:
    """Codes issued per window: none, except `phone_0=3` (the first phone window) etc."""
    counts = dict.fromkeys(WINDOWS, 0)
    names = {
        f"{w.scope}_{i}": w
        for scope in ("phone", "client", "overall")
        for i, w in enumerate(w for w in WINDOWS if w.scope == scope)
    }
    for name, count in overrides.items():
        counts[names[name]] = count
    return counts


def test_the_default_windows() -> None:
    assert [(w.scope, w.limit, w.period) for w in WINDOWS] == [
        ("phone", 3, timedelta(minutes=15)),
        ("phone", 10, timedelta(days=1)),
        ("client", 5, timedelta(hours=1)),
        ("overall", 100, MINUTE),
    ]
    assert WINDOWS[:-1] == PHONE_WINDOWS + CLIENT_WINDOWS


@pytest.mark.parametrize(("value", "limit"), [("250", 250), (" 7 ", 7), ("", 100)])
def test_the_overall_limit_comes_from_the_environment(value: str, limit: int) -> None:
    overall = otp_windows({"CAREBOT_OTP_PER_MINUTE": value})[-1]
    assert overall == Window("overall", limit, MINUTE)


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5", "１０"])
def test_a_malformed_overall_limit_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="CAREBOT_OTP_PER_MINUTE"):
        otp_windows({"CAREBOT_OTP_PER_MINUTE": value})


@pytest.mark.parametrize(
    ("counts", "refusal"),
    [
        ({}, None),
        ({"phone_0": 2, "phone_1": 9, "client_0": 4, "overall_0": 99}, None),
        ({"phone_0": 3}, "phone"),
        ({"phone_1": 10}, "phone"),
        ({"client_0": 5}, "client"),
        ({"overall_0": 100}, "overall"),
        ({"phone_0": 7, "client_0": 9}, "phone"),
    ],
)
def test_send_refusal_by_window(counts: dict[str, int], refusal: str | None) -> None:
    assert send_refusal(_counts(**counts), [], NOW) == refusal


def _exhausted(*minutes_ago: int) -> list[SpentCode]:
    return [SpentCode(NOW - timedelta(minutes=m), verified=False) for m in minutes_ago]


@pytest.mark.parametrize(
    ("spent", "until"),
    [
        ([], None),
        ([SpentCode(NOW, verified=True)], None),
        (_exhausted(0), NOW + LOCKOUT_FIRST),
        (_exhausted(40, 0), NOW + timedelta(minutes=30)),
        (_exhausted(0, 40), NOW + timedelta(minutes=30)),  # any order
        (_exhausted(200, 100, 0), NOW + timedelta(minutes=60)),
        (_exhausted(*range(0, 90, 10)), NOW + LOCKOUT_MEMORY),  # 15 min x 256, capped at a day
        (
            [*_exhausted(30), SpentCode(NOW - timedelta(minutes=20), True), *_exhausted(10)],
            NOW - timedelta(minutes=10) + LOCKOUT_FIRST,
        ),  # a success starts the backoff again
        ([*_exhausted(30, 25), SpentCode(NOW, verified=True)], None),
    ],
)
def test_lockout_doubles_after_each_exhausted_code(
    spent: list[SpentCode], until: datetime | None
) -> None:
    assert lockout_until(spent) == until


def test_a_locked_out_phone_is_refused_until_the_lockout_ends() -> None:
    spent = _exhausted(0)
    assert send_refusal(_counts(), spent, NOW) == "locked_out"
    assert send_refusal(_counts(), spent, NOW + LOCKOUT_FIRST - MINUTE) == "locked_out"
    assert send_refusal(_counts(), spent, NOW + LOCKOUT_FIRST) is None
    assert send_refusal(_counts(phone_0=3), spent, NOW + LOCKOUT_FIRST) == "phone"


def test_pending_code_round_trip() -> None:
    pending = PendingCode(42, "13800138000")
    assert pending.to_slot() == {"code_id": 42, "phone": "13800138000"}
    assert PendingCode.from_slot(pending.to_slot()) == pending


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        42,
        [],
        {},
        {"code_id": 42},
        {"code_id": "42", "phone": "13800138000"},
        {"code_id": True, "phone": "13800138000"},
        {"code_id": 0, "phone": "13800138000"},
        {"code_id": 42, "phone": "138 0013 8000"},
        {"code_id": 42, "phone": "12345"},
        {"digest": "x", "salt": "y", "expires_at": "2026-11-02T08:05:00", "attempts_left": 3},
    ],
)
def test_junk_in_the_slot_gives_none(value: object) -> None:
    assert PendingCode.from_slot(value) is None
