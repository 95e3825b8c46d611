"""WeChat OA push signatures and the safe-mode (AES) envelope: wechatpy's, with our guards.

wechatpy computes the SHA-1 signature (`WeChatSigner`) and the AES-256-CBC envelope
(`PrpCrypto`). Ours: the signature is compared in constant time, ignoring case and surrounding
spaces (wechatpy uses `!=`), the EncodingAESKey is checked at start-up, the envelope's random
prefix comes from os.urandom, and whatever a hostile Encrypt field makes wechatpy raise becomes
one CryptoError, which the webhook answers with 400.
"""

from __future__ import annotations

import base64
import hmac
import os
import struct

from wechatpy.crypto import PrpCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner

AES_KEY_LENGTH = 43


class CryptoError(ValueError):
    """An encrypted push that cannot be decrypted or belongs to another app."""


def signature(*parts: str) -> str:
    """The SHA-1 hex digest WeChat computes over the sorted parts."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_signature(expected: str, *parts: str) -> bool:
    """Whether `expected` is the signature of the parts, compared in constant time."""
    return hmac.compare_digest(signature(*parts).encode(), expected.strip().lower().encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key encoded by the 43-character EncodingAESKey."""
    if len(encoding_aes_key) != AES_KEY_LENGTH or not encoding_aes_key.isalnum():
        raise CryptoError("EncodingAESKey must be 43 letters or digits")
    return base64.b64decode(encoding_aes_key + "=")


class _Cipher(PrpCrypto):
    """wechatpy's cipher, its 16 leading bytes from os.urandom (wechatpy's: `random.sample`
    of letters and digits), or fixed by a test for the published vectors."""

    def __init__(self, key: bytes, prefix: bytes | None = None) -> None:
        super().__init__(key)
        self.prefix = prefix

    def get_random_string(self) -> bytes:
        return os.urandom(16) if self.prefix is None else self.prefix


def encrypt(key: bytes, message: str, app_id: str, *, random_prefix: bytes | None = None) -> str:
    """The base64 Encrypt field for a message; the prefix is random unless a test fixes it."""
    return bytes(_Cipher(key, random_prefix).encrypt(message, app_id)).decode()


def decrypt(key: bytes, encrypted: str, app_id: str) -> str:
    """The message inside an Encrypt field, refusing garbage and other apps' messages."""
    try:
        return str(_Cipher(key).decrypt(encrypted, app_id))
    except InvalidAppIdException as error:
        raise CryptoError("message is for another app") from error
    # ValueError: not base64 (binascii.Error), a partial AES block, not UTF-8;
    # IndexError: nothing to decrypt; struct.error: shorter than its length field
    except (ValueError, IndexError, struct.error) as error:
        raise CryptoError(f"Encrypt does not decrypt: {type(error).__name__}") from error
