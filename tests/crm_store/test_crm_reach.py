from __future__ import annotations

from datetime import timedelta

from crm_helpers import a_customer
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.identities import link_identity, unlink_identity
from crm_store.reach import ContactPoint, contact_points
from crm_store.webchat import end_presence, renew_presence

LEASE = timedelta(seconds=90)


def test_a_follower_is_reachable_on_wechat_and_a_web_login_only_while_connected(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    link_identity(session, customer_id=customer.id, kind="web_user", value="u1")
    link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o1")
    link_identity(session, customer_id=customer.id, kind="wechat_unionid", value="union1")
    assert contact_points(session, customer_id=customer.id, clock=clock) == [
        ContactPoint("wechat", "o1", True),
        ContactPoint("web", "u1", False),
    ]
    renew_presence(session, session_ids=["u1"], lease=LEASE, clock=clock)
    assert ContactPoint("web", "u1", True) in contact_points(
        session, customer_id=customer.id, clock=clock
    )
    end_presence(session, session_id="u1")
    assert ContactPoint("web", "u1", False) in contact_points(
        session, customer_id=customer.id, clock=clock
    )


def test_an_unfollowed_openid_is_no_contact_point(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o1")
    unlink_identity(session, kind="wechat_openid", value="o1")
    assert contact_points(session, customer_id=customer.id, clock=clock) == []


def test_someone_elses_presence_does_not_count(session: Session, clock: ManualClock) -> None:
    mine, theirs = a_customer(session, "甲"), a_customer(session, "乙")
    link_identity(session, customer_id=mine.id, kind="web_session", value="web-a")
    link_identity(session, customer_id=theirs.id, kind="web_session", value="web-b")
    renew_presence(session, session_ids=["web-b"], lease=LEASE, clock=clock)
    assert contact_points(session, customer_id=mine.id, clock=clock) == [
        ContactPoint("web", "web-a", False)
    ]
