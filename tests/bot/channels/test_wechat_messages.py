from __future__ import annotations

from typing import Any

import pytest

from bot.channels.wechat.messages import (
    MAX_BODY_BYTES,
    MAX_TEXT_BYTES,
    MalformedMessage,
    OversizedMessage,
    encrypted_reply,
    parse_fields,
    parse_message,
    render_texts,
    split_text,
    text_reply,
)

TEXT = (
    b"<xml><ToUserName><![CDATA[gh_123]]></ToUserName><FromUserName><![CDATA[oOPENID]]>"
    b"</FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    b"<Content><![CDATA[\xe4\xbd\xa0\xe5\xa5\xbd]]></Content><MsgId>1234567890123456</MsgId></xml>"
)
CLICK = (
    b"<xml><ToUserName>gh_123</ToUserName><FromUserName>oOPENID</FromUserName>"
    b"<CreateTime>123456789</CreateTime><MsgType>event</MsgType><Event>CLICK</Event>"
    b"<EventKey>ORDER</EventKey></xml>"
)


def test_text_message_is_parsed() -> None:
    message = parse_message(TEXT)
    assert (message.from_user, message.to_user, message.msg_type) == ("oOPENID", "gh_123", "text")
    assert message.content == "你好"
    assert message.create_time == 1348831860
    assert message.dedupe_key == "msg:oOPENID:1234567890123456"  # MsgIds of two users may collide


def test_events_dedupe_on_sender_and_time() -> None:
    message = parse_message(CLICK)
    assert (message.event, message.event_key) == ("CLICK", "ORDER")
    assert message.dedupe_key == "event:oOPENID:123456789"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<xml><ToUserName>a</ToUserName>",
        b"<root><ToUserName>a</ToUserName></root>",
        b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName></xml>",
        TEXT.replace(b"1348831860", b"soon"),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>',
        b"\xff\xfe\x00garbage",
        b"<?xml version='1.0' encoding='no-such-codec'?><xml/>",
        b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>',
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><xml/>'.encode("utf-16"),
        b"<xml><a>&undeclared;</a></xml>",
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(body)


def test_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(OversizedMessage):
        parse_fields(b"<xml>" + b"a" * MAX_BODY_BYTES + b"</xml>")


def test_text_reply_swaps_sender_and_receiver() -> None:
    reply = text_reply(parse_message(TEXT), "第一行\n第二行", now=42)
    fields = parse_fields(reply.encode())
    assert fields["ToUserName"] == "oOPENID"
    assert fields["FromUserName"] == "gh_123"
    assert fields["CreateTime"] == "42"
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "第一行\n第二行"


def test_cdata_terminator_in_content_survives() -> None:
    reply = text_reply(parse_message(TEXT), "a]]>b")
    assert parse_fields(reply.encode())["Content"] == "a]]>b"


def test_encrypted_reply_envelope() -> None:
    fields = parse_fields(encrypted_reply("ENC", "SIG", "1411525903", "461056294").encode())
    assert fields == {
        "Encrypt": "ENC",
        "MsgSignature": "SIG",
        "TimeStamp": "1411525903",
        "Nonce": "461056294",
    }


def test_long_texts_are_split_at_line_breaks_within_the_byte_limit() -> None:
    text = "\n".join(["订单状态正常"] * 200)  # 18 bytes a line plus the breaks
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(len(piece.encode()) <= MAX_TEXT_BYTES for piece in pieces)
    assert "\n".join(pieces) == text


def test_a_long_line_is_cut_between_characters() -> None:
    pieces = split_text("你" * 1000, limit=100)
    assert all(len(piece.encode()) <= 100 for piece in pieces)
    assert "".join(pieces) == "你" * 1000


def test_render_texts_drops_empty_messages() -> None:
    messages: list[dict[str, Any]] = [
        {"text": "a"},
        {"custom": {"x": 1}},
        {"text": "b", "image": "https://x/y.png"},
    ]
    assert render_texts(messages) == ["a", "b\nhttps://x/y.png"]
