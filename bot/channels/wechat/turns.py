"""Retries of one push share one bot run: an in-process map from dedupe key to its run
(`PushRun`: not an action's `Turn` in actions/base.py, nor an `InteractionRow`).

WeChat re-sends a push it got no answer to within 5 s. Each retry must find the turn the first
request started, so the bot runs once and the reply goes out once. The map lives in this process;
with several Rasa processes behind one URL, Redis decides which process runs a push (shared.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

RETRY_TTL_SECONDS = 120.0  # WeChat's retries end about 15 s after the first request
MAX_TURNS = 10_000

BotMessages = list[dict[str, Any]]


class PushRun:
    """One push's bot run, and the HTTP body decided for it once (reused by every retry)."""

    def __init__(self, task: asyncio.Task[BotMessages]) -> None:
        self.task = task
        self.body: str | None = None
        self.lock = asyncio.Lock()


class PushRuns:
    """Push runs by dedupe key, forgotten after a TTL or when the map is full (oldest first)."""

    def __init__(self, ttl: float = RETRY_TTL_SECONDS, max_turns: int = MAX_TURNS) -> None:
        self.ttl = ttl
        self.max_turns = max_turns
        self._turns: OrderedDict[str, tuple[float, PushRun]] = OrderedDict()

    def get_or_start(self, key: str, start: Callable[[], asyncio.Task[BotMessages]]) -> PushRun:
        """The turn for this key; `start` runs only when there is none."""
        self._forget_expired(time.monotonic())
        if key in self._turns:
            return self._turns[key][1]
        turn = PushRun(start())
        self._turns[key] = (time.monotonic() + self.ttl, turn)
        while len(self._turns) > self.max_turns:
            self._turns.popitem(last=False)
        return turn

    def get(self, key: str) -> PushRun | None:
        """The turn for this key if there is one; never starts one."""
        self._forget_expired(time.monotonic())
        entry = self._turns.get(key)
        return None if entry is None else entry[1]

    def _forget_expired(self, now: float) -> None:
        while self._turns:
            key, (expires_at, _turn) = next(iter(self._turns.items()))
            if expires_at > now:
                return
            del self._turns[key]

    def __len__(self) -> int:
        return len(self._turns)

    def __contains__(self, key: object) -> bool:
        self._forget_expired(time.monotonic())
        return key in self._turns
