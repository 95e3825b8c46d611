"""The randomness of one seeding run: one seeded RNG and the clock the data is generated at."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any


class Draws:
    """All the randomness of one seeding run; same seed, same rows.

    Hot paths draw with `random()` and index sequences themselves: `randint`, `choice`,
    `choices` and `sample` check their arguments on every call, which dominated generation.
    """

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.now = now

    def between(self, low: int, high: int) -> int:
        """random.randint without its argument checks."""
        return low + int(self.random() * (high - low + 1))

    def pick(self, items: Sequence[Any]) -> Any:
        """random.choice without its argument checks."""
        return items[int(self.random() * len(items))]

    def ago(self, days: int) -> datetime:
        """`days` days and a random minute of the day before now."""
        return self.now - timedelta(days=days, minutes=self.between(0, 1_439))
