"""Our WeChat crypto and XML against wechatpy, the reference Python implementation."""

from __future__ import annotations

import string

import pytest
import xmltodict
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy import parse_message as wechatpy_parse
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature as wechatpy_check_signature

from bot.channels.wechat import crypto
from bot.channels.wechat.messages import encrypted_reply, parse_message

TOKEN, APP_ID = "carebot-token", "wx_carebot_demo"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TEXT_PUSH = (
    "<xml><ToUserName><![CDATA[gh_carebot]]></ToUserName>"
    "<FromUserName><![CDATA[o_demo_openid]]></FromUserName>"
    "<CreateTime>1763798400</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content><MsgId>24011234567890</MsgId></xml>"
)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="]>"),
    min_size=1,
    max_size=300,
)


def reference() -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, APP_ID)


@settings(max_examples=40, deadline=None)
@given(content=texts)
def test_wechatpy_reads_what_we_encrypt(content: str) -> None:
    plain = TEXT_PUSH.format(content=content)
    encrypted = crypto.encrypt(crypto.aes_key(AES_KEY), plain, APP_ID)
    timestamp, nonce = "1763798400", "20261122"
    body = encrypted_reply(
        encrypted, crypto.signature(TOKEN, timestamp, nonce, encrypted), timestamp, nonce
    )
    msg_signature = xmltodict.parse(body)["xml"]["MsgSignature"]
    assert reference().decrypt_message(body, msg_signature, timestamp, nonce) == plain


@settings(max_examples=40, deadline=None)
@given(content=texts)
def test_we_read_what_wechatpy_encrypts(content: str) -> None:
    plain = TEXT_PUSH.format(content=content)
    timestamp, nonce = "1763798400", "nonce42"
    envelope = xmltodict.parse(reference().encrypt_message(plain, nonce, timestamp))["xml"]
    encrypted = envelope["Encrypt"]
    assert crypto.check_signature(envelope["MsgSignature"], TOKEN, timestamp, nonce, encrypted)
    decrypted = crypto.decrypt(crypto.aes_key(AES_KEY), encrypted, APP_ID)
    assert decrypted == plain
    ours, theirs = parse_message(decrypted.encode()), wechatpy_parse(decrypted)
    assert (ours.from_user, ours.msg_type) == (theirs.source, theirs.type)
    assert ours.content == theirs.content.strip() == content.strip()  # we trim what we hear
    assert ours.msg_id == str(theirs.id) and ours.create_time == theirs.create_time.timestamp()


@given(
    timestamp=st.text(string.digits, min_size=1, max_size=10),
    nonce=st.text(string.ascii_letters + string.digits, min_size=1, max_size=16),
)
def test_signatures_agree_with_wechatpy(timestamp: str, nonce: str) -> None:
    ours = crypto.signature(TOKEN, timestamp, nonce)
    wechatpy_check_signature(TOKEN, ours, timestamp, nonce)  # raises when they disagree
    assert crypto.check_signature(ours, TOKEN, timestamp, nonce)
    with pytest.raises(InvalidSignatureException):
        wechatpy_check_signature(TOKEN, ours[::-1], timestamp, nonce)


@pytest.mark.parametrize(
    "push",
    [
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_x</EventKey></xml>",
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>ORDER</EventKey></xml>",
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_1</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>image</MsgType><PicUrl>http://x</PicUrl><MediaId>m</MediaId><MsgId>9</MsgId></xml>",
    ],
)
def test_events_and_other_types_parse_as_wechatpy_parses_them(push: str) -> None:
    ours, theirs = parse_message(push.encode()), wechatpy_parse(push)
    assert ours.from_user == theirs.source and ours.msg_type == theirs.type
    if ours.msg_type == "event":  # wechatpy calls a follow from a QR code "subscribe_scan"
        assert theirs.event.startswith(ours.event.lower())
        key = getattr(theirs, "key", None) or f"qrscene_{theirs.scene_id}"
        assert ours.event_key == key
