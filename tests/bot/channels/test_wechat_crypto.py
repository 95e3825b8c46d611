from __future__ import annotations

import pytest

from bot.channels.wechat.crypto import (
    CryptoError,
    aes_key,
    check_signature,
    decrypt,
    encrypt,
    signature,
)

# Vectors from the WeChat docs (signature) and wechatpy's tests/test_crypto.py (AES envelope).
TOKEN = "123456"
KEY = aes_key("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR")
APP_ID = "wx49f0ab532d5d035a"
TIMESTAMP, NONCE = "1411525903", "461056294"
INBOUND = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYy"
    "olBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWO"
    "MZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7ml"
    "sl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
OUTBOUND = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGs"
    "L8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSj"
    "PUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJv"
    "FurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFY"
    "FMNMpatF9XiKzHo3"
)


def test_official_url_verification_vectors() -> None:
    assert signature("AAAAA", "1714036504", "1514711492") == (
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )
    assert check_signature(
        "899cf89e464efb63f54ddac96b0a0a235f53aa78", "AAAAA", "1714037059", "486452656"
    )
    assert not check_signature(
        "899cf89e464efb63f54ddac96b0a0a235f53aa78", "AAAAA", "1714037059", "486452657"
    )


def test_inbound_vector_decrypts_and_its_msg_signature_matches() -> None:
    assert check_signature(
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", TOKEN, TIMESTAMP, NONCE, INBOUND
    )
    message = decrypt(KEY, INBOUND, APP_ID)
    assert "<Content><![CDATA[test]]></Content>" in message
    assert "messense" in message


def test_outbound_vector_with_the_fixed_prefix() -> None:
    encrypted = encrypt(KEY, REPLY, APP_ID, random_prefix=b"1234567890123456")
    assert encrypted == OUTBOUND
    assert (
        signature(TOKEN, TIMESTAMP, NONCE, encrypted) == "407518b7649e86ef23978113f92d27afa9296533"
    )


def test_round_trip_of_chinese_text() -> None:
    assert decrypt(KEY, encrypt(KEY, "<xml>你好</xml>", APP_ID), APP_ID) == "<xml>你好</xml>"


@pytest.mark.parametrize(
    "encrypted",
    ["", "not base64!", "QUJD", INBOUND[:-8] + "AAAAAAA=", "A" * 64],
)
def test_garbage_is_refused(encrypted: str) -> None:
    with pytest.raises(CryptoError):
        decrypt(KEY, encrypted, APP_ID)


def test_another_apps_message_is_refused() -> None:
    with pytest.raises(CryptoError, match="another app"):
        decrypt(KEY, INBOUND, "wx0000000000000000")


@pytest.mark.parametrize("key", ["short", "A" * 42 + "!"])
def test_bad_encoding_aes_key_is_refused(key: str) -> None:
    with pytest.raises(CryptoError):
        aes_key(key)


def test_the_random_prefix_differs_between_encryptions() -> None:
    first, second = (encrypt(KEY, REPLY, APP_ID) for _ in range(2))
    assert first != second
    assert decrypt(KEY, first, APP_ID) == decrypt(KEY, second, APP_ID) == REPLY
