"""WeChat OA push signatures and the safe-mode (AES) message envelope, as pure functions.

WeChat signs each push with SHA-1 over the sorted token, timestamp and nonce (plus the Encrypt
field in safe mode). Safe mode wraps each message as AES-256-CBC over
random(16) + length(4, big-endian) + message + app id, padded PKCS#7 to 32 bytes, IV = key[:16].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_SIZE = 32  # WeChat pads to 32 bytes, not AES's 16
AES_KEY_LENGTH = 43


class CryptoError(ValueError):
    """An encrypted push that cannot be decrypted or belongs to another app."""


def signature(*parts: str) -> str:
    """The SHA-1 hex digest WeChat computes over the sorted parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(expected: str, *parts: str) -> bool:
    """Whether `expected` is the signature of the parts, compared in constant time."""
    return hmac.compare_digest(signature(*parts).encode(), expected.strip().lower().encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key encoded by the 43-character EncodingAESKey."""
    if len(encoding_aes_key) != AES_KEY_LENGTH or not encoding_aes_key.isalnum():
        raise CryptoError("EncodingAESKey must be 43 letters or digits")
    return base64.b64decode(encoding_aes_key + "=")


def _pad(data: bytes) -> bytes:
    amount = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    amount = data[-1] if data else 0
    if not 1 <= amount <= BLOCK_SIZE or data[-amount:] != bytes([amount]) * amount:
        raise CryptoError("bad padding")
    return data[:-amount]


def encrypt(key: bytes, message: str, app_id: str, *, random_prefix: bytes | None = None) -> str:
    """The base64 Encrypt field for a message; the prefix is random unless a test fixes it."""
    prefix = random_prefix if random_prefix is not None else os.urandom(16)
    body = message.encode()
    plain = _pad(prefix + struct.pack(">I", len(body)) + body + app_id.encode())
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt(key: bytes, encrypted: str, app_id: str) -> str:
    """The message inside an Encrypt field, refusing garbage and other apps' messages."""
    try:
        cipher_bytes = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as error:
        raise CryptoError("Encrypt is not base64") from error
    if not cipher_bytes or len(cipher_bytes) % 16:
        raise CryptoError("Encrypt is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = _unpad(decryptor.update(cipher_bytes) + decryptor.finalize())
    return _split_plain(plain, app_id)


def _split_plain(plain: bytes, app_id: str) -> str:
    if len(plain) < 20:
        raise CryptoError("message too short")
    (length,) = struct.unpack(">I", plain[16:20])
    body, receiver = plain[20 : 20 + length], plain[20 + length :]
    if len(body) != length or receiver != app_id.encode():
        raise CryptoError("message is for another app")
    try:
        return body.decode()
    except UnicodeDecodeError as error:
        raise CryptoError("message is not UTF-8") from error
