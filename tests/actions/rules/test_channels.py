from __future__ import annotations

import pytest

from actions.rules.channels import (
    API_KINDS,
    crm_channel,
    identity_kinds,
    identity_value,
    trusted_channel,
    verified_kind,
)


@pytest.mark.parametrize(
    ("metadata", "input_channel", "channel"),
    [
        ({"channel": "web"}, "webchat", "web"),
        ({"channel": "wechat"}, "wechat", "wechat"),
        ({"channel": "rest"}, "rest", "rest"),
        (None, None, None),  # Rasa's HTTP API: trigger_intent from the scheduler
        ({}, "cmdline", "web_anonymous"),  # `rasa shell`: nobody's identity
        ({"channel": "console"}, "cmdline", "web_anonymous"),
        ({"channel": ["wechat"]}, "rest", "web_anonymous"),
    ],
)
def test_the_channel_is_what_our_input_channel_wrote(
    metadata: dict[str, object] | None, input_channel: str | None, channel: str | None
) -> None:
    assert trusted_channel(metadata, input_channel) == channel


def test_each_channel_vouches_only_for_its_own_identity_kinds() -> None:
    assert identity_kinds("web") == ("web_user", "web_session")
    assert identity_kinds("wechat") == ("wechat_openid",)
    assert identity_kinds("rest") == ("rest_user",)
    assert identity_kinds("web_anonymous") == ()
    assert identity_kinds(None) == API_KINDS and "wechat_unionid" not in API_KINDS


def test_rest_conversations_live_in_their_own_namespace() -> None:
    assert identity_value("rest_user", "rest:demo") == "demo"
    assert identity_value("rest_user", "demo") is None  # a web login is no REST user
    assert identity_value("web_user", "rest:demo") is None  # and a REST sender no web login
    assert identity_value("wechat_openid", "rest:o_demo_openid") is None
    assert identity_value("wechat_openid", "o_demo_openid") == "o_demo_openid"


def test_a_code_proves_the_identity_of_the_conversation_it_was_typed_in() -> None:
    assert verified_kind("wechat") == "wechat_openid"
    assert verified_kind("rest") == "rest_user"
    assert verified_kind("web") == "web_session"
    assert verified_kind(None) == "web_session"
    assert (crm_channel("wechat"), crm_channel("rest"), crm_channel(None)) == (
        "wechat",
        "web",
        "web",
    )
