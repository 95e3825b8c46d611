"""Spent push signatures: first use, the same push again, another push; expiry; the stores."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.channels.wechat.nonces import (
    DatabaseNonces,
    MemoryNonces,
    PushNonce,
    PushNonces,
    Sighting,
    StoreUnavailable,
)
from crm_store.clock import ManualClock
from crm_store.db import make_engine
from crm_store.migrate import upgrade

SENT = 1_714_037_059
NOW = datetime.fromtimestamp(SENT, timezone.utc)


def nonce(push: str = "msg:oUSER:1", signature: str = "ab12", nonce_value: str = "7") -> PushNonce:
    query = (str(SENT), nonce_value, signature)
    return PushNonce.of("wx_app", query, dedupe_key=push, sent_at=SENT, window=300)


def test_a_nonce_lives_as_long_as_its_timestamp_is_in_the_window() -> None:
    assert nonce().expires_at == NOW + timedelta(seconds=300)


def test_the_signatures_case_and_spaces_do_not_make_a_new_nonce() -> None:
    assert nonce(signature=" AB12 ").key == nonce().key
    assert nonce(nonce_value="8").key != nonce().key
    assert nonce(push="msg:oUSER:2").pair != nonce().pair


async def test_memory_tells_first_same_and_other_pushes_apart() -> None:
    clock = ManualClock(NOW)
    store = MemoryNonces(clock)
    assert await store.spend(nonce()) is Sighting.FIRST
    assert await store.spend(nonce()) is Sighting.SAME_PUSH
    assert await store.spend(nonce(push="msg:oUSER:2")) is Sighting.OTHER_PUSH
    clock.advance(timedelta(seconds=301))
    assert await store.spend(nonce(push="msg:oUSER:2")) is Sighting.FIRST


async def test_memory_forgets_the_oldest_when_full() -> None:
    store = MemoryNonces(ManualClock(NOW), max_entries=2)
    for value in ("1", "2", "3"):
        assert await store.spend(nonce(nonce_value=value)) is Sighting.FIRST
    assert await store.spend(nonce(nonce_value="1")) is Sighting.FIRST
    assert await store.spend(nonce(nonce_value="3")) is Sighting.SAME_PUSH


async def test_the_database_keeps_spent_nonces_for_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    engine, clock = make_engine(url), ManualClock(NOW)
    try:
        one, other = DatabaseNonces(lambda: engine, clock), DatabaseNonces(lambda: engine, clock)
        assert await one.spend(nonce()) is Sighting.FIRST
        assert await other.spend(nonce()) is Sighting.SAME_PUSH
        assert await other.spend(nonce(push="msg:oUSER:2")) is Sighting.OTHER_PUSH
    finally:
        engine.dispose()


class Broken:
    name = "broken"

    async def spend(self, push_nonce: PushNonce) -> Sighting:
        raise StoreUnavailable("down")


async def test_a_failing_store_is_skipped_and_memory_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nonces = PushNonces([Broken()], ManualClock(NOW))
    with caplog.at_level(logging.WARNING):
        assert await nonces.spend(nonce()) is Sighting.FIRST
        assert await nonces.spend(nonce(push="msg:oUSER:2")) is Sighting.OTHER_PUSH
    assert "nonce store broken unavailable (down)" in caplog.text


async def test_a_slow_database_is_given_up_on() -> None:
    def stuck() -> None:
        time.sleep(0.5)

    store = DatabaseNonces(stuck, ManualClock(NOW), timeout=0.05)
    with pytest.raises(StoreUnavailable):
        await store.spend(nonce())
