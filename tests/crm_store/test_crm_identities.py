from __future__ import annotations

import pytest
from crm_helpers import a_customer
from sqlalchemy.orm import Session

from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.identities import (
    find_customer_by_identity,
    link_identity,
    list_identities,
    list_wechat_followers,
    unlink_identity,
)


def test_a_customer_may_have_several_identities(session: Session) -> None:
    customer = a_customer(session)
    link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o_1")
    link_identity(session, customer_id=customer.id, kind="web_user", value="u_1")
    assert [i.kind for i in list_identities(session, customer_id=customer.id)] == [
        "wechat_openid",
        "web_user",
    ]
    assert find_customer_by_identity(session, kind="web_user", value="u_1") == customer


def test_linking_twice_to_the_same_customer_is_idempotent(session: Session) -> None:
    customer = a_customer(session)
    first = link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o_1")
    again = link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o_1")
    assert first == again


def test_linking_another_customers_identity_never_merges(session: Session) -> None:
    alice, bob = a_customer(session, "甲"), a_customer(session, "乙")
    link_identity(session, customer_id=alice.id, kind="wechat_openid", value="o_1")
    with pytest.raises(Conflict):
        link_identity(session, customer_id=bob.id, kind="wechat_openid", value="o_1")
    assert find_customer_by_identity(session, kind="wechat_openid", value="o_1").id == alice.id


def test_unknown_identity_and_bad_input(session: Session) -> None:
    assert find_customer_by_identity(session, kind="web_session", value="nope") is None
    with pytest.raises(InvalidInput):
        link_identity(session, customer_id=1, kind="qq", value="x")
    with pytest.raises(NotFound):
        link_identity(session, customer_id=999_999, kind="web_user", value="x")


def test_unlink_identity(session: Session) -> None:
    customer = a_customer(session)
    link_identity(session, customer_id=customer.id, kind="web_session", value="s_1")
    assert unlink_identity(session, kind="web_session", value="s_1") is True
    assert unlink_identity(session, kind="web_session", value="s_1") is False


def test_the_wechat_followers_are_the_linked_openids(session: Session) -> None:
    first, second = a_customer(session), a_customer(session, name="李娜")
    link_identity(session, customer_id=first.id, kind="wechat_openid", value="o_1")
    link_identity(session, customer_id=first.id, kind="wechat_unionid", value="u_union")
    link_identity(session, customer_id=second.id, kind="web_user", value="u_2")
    link_identity(session, customer_id=second.id, kind="wechat_openid", value="o_2")
    assert list_wechat_followers(session) == ["o_1", "o_2"]
    unlink_identity(session, kind="wechat_openid", value="o_1")  # an unfollow
    assert list_wechat_followers(session) == ["o_2"]
