"""Follows and unfollows change the CRM: a link QR code links the OpenID, an unfollow unlinks it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.channels.wechat.linking import link_token
from crm_store.audit import list_audit_entries
from crm_store.clock import utcnow
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import find_customer_by_identity, link_identity
from crm_store.interactions import ensure_conversation, log_interaction
from crm_store.migrate import upgrade
from crm_store.models import Conversation, Interaction
from tests.bot.channels.wechat_server import Rig, event, push

SECRET = "link-secret"
OPENID = "oUSER"  # the sender of every push in wechat_server


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def credentials_extra(crm: Engine) -> dict[str, Any]:
    return {"database_url": crm.url.render_as_string(hide_password=False), "link_secret": SECRET}


def new_customer(crm: Engine, name: str = "王女士") -> int:
    with session_scope(crm) as session:
        return create_customer(session, name=name).id


def customer_of(crm: Engine, openid: str = OPENID) -> int | None:
    with session_scope(crm) as session:
        customer = find_customer_by_identity(session, kind="wechat_openid", value=openid)
    return customer.id if customer else None


def watch_greetings(rig: Rig, crm: Engine) -> list[int | None]:
    """The customer the OpenID belongs to at the moment each message reaches the bot."""
    seen: list[int | None] = []
    hand_on = rig.channel._on_new_message
    assert hand_on is not None

    async def looking(message: Any) -> None:
        seen.append(customer_of(crm, message.sender_id))
        await hand_on(message)

    rig.channel._on_new_message = looking
    return seen


async def test_a_follow_through_a_link_qr_code_links_before_the_greeting(
    rig: Rig, crm: Engine
) -> None:
    customer_id = new_customer(crm)
    seen = watch_greetings(rig, crm)
    token = link_token(customer_id, SECRET, utcnow())
    status, _body = await rig.post(event("subscribe", f"qrscene_{token}"))
    assert status == 200
    assert [message.text for message in rig.bot.heard] == ["/greet"]
    assert seen == [customer_id]
    with session_scope(crm) as session:
        [entry] = list_audit_entries(session, entity="customer", entity_id=customer_id)
    assert (entry.actor, entry.action) == ("wechat", "link_identity")
    assert OPENID not in str(entry.changes)


async def test_a_follower_scanning_a_link_qr_code_is_linked_and_greeted(
    rig: Rig, crm: Engine
) -> None:
    customer_id = new_customer(crm)
    await rig.post(event("SCAN", link_token(customer_id, SECRET, utcnow())))
    assert customer_of(crm) == customer_id
    assert [message.text for message in rig.bot.heard] == ["/greet"]
    heard = rig.bot.heard[0]
    assert heard.metadata == {"channel": "wechat", "wechat": {"msg_type": "event", "event": "SCAN"}}


@pytest.mark.parametrize("forged", [True, False], ids=["forged", "expired"])
async def test_forged_and_expired_tokens_link_nobody(
    rig: Rig, crm: Engine, forged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    customer_id = new_customer(crm)
    issued = utcnow() - (timedelta(0) if forged else timedelta(hours=1))
    token = link_token(customer_id, "not-our-secret" if forged else SECRET, issued)
    with caplog.at_level(logging.INFO):
        await rig.post(event("subscribe", f"qrscene_{token}"))
        assert await rig.post(event("SCAN", token, create_time=1)) == (200, "success")
    assert customer_of(crm) is None
    assert [message.text for message in rig.bot.heard] == ["/greet"]  # the follow only
    assert ("forged" if forged else "expired") in caplog.text


async def test_an_openid_of_another_customer_is_not_moved(
    rig: Rig, crm: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    owner, other = new_customer(crm, "甲"), new_customer(crm, "乙")
    with session_scope(crm) as session:
        link_identity(session, customer_id=owner, kind="wechat_openid", value=OPENID)
    with caplog.at_level(logging.WARNING):
        status, _ = await rig.post(event("SCAN", link_token(other, SECRET, utcnow())))
    assert status == 200
    assert customer_of(crm) == owner
    assert "another customer" in caplog.text
    assert [message.text for message in rig.bot.heard] == ["/greet"]


async def test_a_token_for_a_customer_who_does_not_exist_links_nobody(
    rig: Rig, crm: Engine
) -> None:
    await rig.post(event("subscribe", f"qrscene_{link_token(999, SECRET, utcnow())}"))
    assert customer_of(crm) is None
    assert [message.text for message in rig.bot.heard] == ["/greet"]


async def test_a_plain_follow_and_other_scenes_only_greet(rig: Rig, crm: Engine) -> None:
    await rig.post(event("subscribe"))
    await rig.post(event("subscribe", "qrscene_spring_campaign", create_time=1))
    assert await rig.post(event("SCAN", "spring_campaign", create_time=2)) == (200, "success")
    assert [message.text for message in rig.bot.heard] == ["/greet", "/greet"]


async def test_an_unfollow_unlinks_the_openid_and_is_audited(rig: Rig, crm: Engine) -> None:
    customer_id = new_customer(crm)
    with session_scope(crm) as session:
        link_identity(session, customer_id=customer_id, kind="wechat_openid", value=OPENID)
    assert await rig.post(event("unsubscribe")) == (200, "success")
    await rig.channel.idle()
    assert customer_of(crm) is None
    with session_scope(crm) as session:
        [entry] = list_audit_entries(session, entity="customer", entity_id=customer_id)
    assert (entry.actor, entry.action) == ("wechat", "unlink_identity")
    assert entry.changes == {"identity_kind": "wechat_openid", "reason": "unsubscribe"}
    assert rig.bot.heard == []
    assert await rig.post(event("unsubscribe")) == (200, "success")  # WeChat's retry
    await rig.channel.idle()


async def test_an_unfollow_erases_the_history_when_the_operator_asks(rig: Rig, crm: Engine) -> None:
    """CAREBOT_WECHAT_FORGET_ON_UNFOLLOW (docs/personal-data.md): the OpenID's conversation
    loses its id and its words; the member stays."""
    customer_id = new_customer(crm)
    with session_scope(crm) as session:
        link_identity(session, customer_id=customer_id, kind="wechat_openid", value=OPENID)
        ensure_conversation(session, conversation_id=OPENID, channel="wechat")
        log_interaction(
            session,
            conversation_id=OPENID,
            channel="wechat",
            speaker="customer",
            text="我的地址是幸福路88号",
            customer_id=customer_id,
        )
    rig.channel.followers.forget_history = True
    assert await rig.post(event("unsubscribe")) == (200, "success")
    await rig.channel.idle()
    with session_scope(crm) as session:
        texts = session.scalars(select(Interaction.text)).all()
        assert texts == [None]
        assert session.get(Conversation, OPENID) is None
        actions = [e.action for e in list_audit_entries(session, entity="conversation")]
    assert actions == ["forget_conversation"]
    assert customer_of(crm) is None and new_customer(crm) != customer_id


def test_the_setting_reaches_the_channel() -> None:
    from bot.channels.wechat.channel import WeChatConfig
    from bot.runtime import wechat_credentials

    env = {"CAREBOT_WECHAT_APP_ID": "wx1", "CAREBOT_WECHAT_FORGET_ON_UNFOLLOW": "1"}
    section = wechat_credentials(env)
    assert section is not None and section["forget_on_unfollow"] == "1"
    plain = {"app_id": "a", "app_secret": "s", "token": "t", "api_base_url": "http://x"}
    config = WeChatConfig.from_credentials(
        {**plain, "allow_plain_mode": True, "forget_on_unfollow": "1"}
    )
    assert config.forget_on_unfollow


@pytest.fixture
def unmigrated(tmp_path: Path) -> str:
    """A database without the CRM's tables: every write fails."""
    return f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.mark.parametrize("credentials_extra", [{"link_secret": SECRET}])
async def test_a_crm_failure_on_unfollow_is_logged_and_still_success(
    rig: Rig, unmigrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig.channel.followers.database_url = unmigrated
    with caplog.at_level(logging.ERROR):
        assert await rig.post(event("unsubscribe")) == (200, "success")
        await rig.channel.idle()
    assert "unfollow of oUSER could not be recorded" in caplog.text
    status, _ = await rig.post(push())
    assert status == 200


@pytest.mark.parametrize("credentials_extra", [{}])
async def test_without_a_database_unfollows_are_only_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert await rig.post(event("unsubscribe")) == (200, "success")
        await rig.channel.idle()
    assert "no database_url" in caplog.text


async def test_a_crm_failure_on_a_follow_still_greets(
    rig: Rig, unmigrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig.channel.followers.database_url = unmigrated
    with caplog.at_level(logging.ERROR):
        status, _ = await rig.post(event("subscribe", f"qrscene_{link_token(1, SECRET, utcnow())}"))
    assert status == 200
    assert [message.text for message in rig.bot.heard] == ["/greet"]
    assert "link of oUSER could not be recorded" in caplog.text
