"""The scripted conversations' format and reply matcher, without a running system: every script
loads (so every response it names exists), and the matcher tells responses apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conversations.script import (
    Reply,
    ScriptError,
    fill,
    fill_all,
    load_conversations,
    load_file,
    matches,
    reply_mismatch,
    rest_reply,
    wechat_reply,
)


def test_every_script_loads_with_enough_conversations_on_each_channel() -> None:
    conversations = load_conversations()
    assert len(conversations) >= 60
    assert sum(c.channel == "wechat" for c in conversations) >= 10


def test_a_response_with_fields_matches_its_filled_text_only() -> None:
    text = "您是银卡会员，当前积分 1500 分。"
    assert matches("utter_points_balance_personal", "rest", text)
    assert not matches("utter_points_balance_personal", "rest", "您是银卡会员。")
    assert not matches("utter_tier_benefits", "rest", text)


def test_any_variant_of_a_response_matches() -> None:
    assert matches("utter_greet", "rest", "您好！查订单、查积分、售后问题都可以问我哦～")
    assert not matches("utter_greet", "rest", "王小明，欢迎回来！有什么可以帮您？")


def test_on_wechat_buttons_are_numbered_lines_after_the_text() -> None:
    content = "需要现在为您转接人工客服吗？\n1. 转人工\n2. 不用了"
    text = (
        "非常抱歉给您带来了不好的体验，这是我们的问题。已为您登记投诉工单 #7，我们会在 "
        "12月04日 18:38 前联系您处理。"
    )
    reply = wechat_reply(text + content)
    assert reply.buttons == (("转人工", None), ("不用了", None))
    assert matches("utter_complaint_ticket", "wechat", reply.text)
    assert not matches("utter_complaint_ticket", "rest", reply.text)


def test_replies_must_be_the_expected_responses_in_order_and_number() -> None:
    welcome = Reply("林小雨，欢迎回来！有什么可以帮您？")
    invoice = rest_reply({"text": "我们支持开具电子普通发票和增值税专用发票。"})
    assert reply_mismatch(["utter_welcome_back"], [welcome], "rest") is None
    assert "2 replies, 1 expected" in str(
        reply_mismatch(["utter_welcome_back"], [welcome, invoice], "rest")
    )
    swapped = reply_mismatch(
        ["utter_faq/invoice", "utter_welcome_back"], [welcome, invoice], "rest"
    )
    assert swapped is not None and "reply 1 is not utter_faq/invoice" in swapped


def test_a_reply_that_shows_a_raw_field_never_passes() -> None:
    raw = Reply("订单里有：{items}。请问要退换哪一件？")
    assert matches("utter_ask_return_item", "rest", raw.text)  # the pattern alone would
    problem = reply_mismatch(["utter_ask_return_item"], [raw], "rest")
    assert problem is not None and "unfilled {items}" in problem


def test_placeholders_are_filled_everywhere_in_a_value() -> None:
    values = {"order.fryer": "DD202612010001", "code": "123456"}
    assert fill("查订单{order.fryer}", values.__getitem__) == "查订单DD202612010001"
    assert fill_all({"a": ["{code}", 3]}, values.__getitem__) == {"a": ["123456", 3]}


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("conversations: [{name: x, channel: sms, steps: [{say: hi}]}]", "channel"),
        (
            "conversations: [{name: x, channel: rest, steps: [{say: hi, replies: [utter_nope]}]}]",
            "utter_nope",
        ),
        ("conversations: [{name: x, channel: rest, steps: [{say: hi, click: ok}]}]", "exactly one"),
        ("conversations: [{name: x, channel: wechat, steps: [{click: ok}]}]", "nothing to click"),
        ("conversations: [{name: x, channel: rest, steps: [{event: subscribe}]}]", "WeChat"),
        ("conversations: [{name: x, channel: rest, steps: [{say: hi}], crm: {rows: []}}]", "rows"),
        ("conversations: [{name: x, channel: rest, steps: [{say: hi}], member: {age: 3}}]", "age"),
    ],
)
def test_a_malformed_script_is_refused_when_loaded(tmp_path: Path, script: str, error: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(script, encoding="utf-8")
    with pytest.raises(ScriptError, match=error):
        load_file(path)
