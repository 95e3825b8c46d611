from __future__ import annotations

from bot.care.routing import choose_contact_point
from crm_store.reach import ContactPoint

WECHAT = ContactPoint("wechat", "o1", True)
WEB_OPEN = ContactPoint("web", "u1", True)
WEB_CLOSED = ContactPoint("web", "u1", False)


def test_the_preferred_channel_wins_when_it_reaches_the_customer() -> None:
    assert choose_contact_point("web", [WECHAT, WEB_OPEN]) == WEB_OPEN
    assert choose_contact_point("wechat", [WEB_OPEN, WECHAT]) == WECHAT


def test_another_reachable_channel_stands_in_for_the_preferred_one() -> None:
    assert choose_contact_point("web", [WEB_CLOSED, WECHAT]) == WECHAT


def test_a_reachable_conversation_beats_an_unreachable_one_on_the_same_channel() -> None:
    other_tab = ContactPoint("web", "web-x", True)
    assert choose_contact_point("web", [WEB_CLOSED, other_tab]) == other_tab


def test_nobody_reachable_means_the_message_waits() -> None:
    assert choose_contact_point("web", [WEB_CLOSED]) is None
    assert choose_contact_point("wechat", []) is None
