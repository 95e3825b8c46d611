"""Who a conversation's customer is follows the channel our own input channel recorded, never
what a client claims (docs/security.md)."""

from __future__ import annotations

import pytest

from actions.session import ActionSessionStart
from tests.actions.helpers import WANG, Run, slots_set, tracker


def identified_as(run: Run, **state: object) -> object:
    _, events = run(ActionSessionStart(), tracker(**state))  # type: ignore[arg-type]
    return slots_set(events).get("customer_id")


def test_a_rest_sender_is_the_back_ends_user_and_nothing_else(run: Run) -> None:
    assert identified_as(run, sender="rest:demo", channel="rest") == WANG
    assert identified_as(run, sender="rest:o_demo_openid", channel="rest") is None


@pytest.mark.parametrize("channel", ["rest", "web"])
def test_an_openid_is_only_a_follower_on_wechat(run: Run, channel: str) -> None:
    assert identified_as(run, sender="o_demo_openid", channel=channel) is None
    assert identified_as(run, sender="o_demo_openid", channel="wechat") == WANG


def test_a_web_login_is_only_a_member_on_the_web(run: Run) -> None:
    assert identified_as(run, sender="demo", channel="web") == WANG
    assert identified_as(run, sender="demo", channel="wechat") is None
    assert identified_as(run, sender="demo", channel="rest") is None


def test_an_input_channel_that_is_not_ours_names_nobody(run: Run) -> None:
    assert identified_as(run, sender="demo", channel="cmdline") is None  # `rasa shell`
