"""Customer-facing words the console sends (an agent joined, the service ended) live in
domain.yml like every other one; this reads them from there."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

AGENT_JOINED = "utter_handoff_agent_joined"
AGENT_TRANSFERRED = "utter_handoff_transferred"


@lru_cache(maxsize=4)
def _responses(domain_path: Path) -> dict[str, Any]:
    domain = yaml.safe_load(domain_path.read_text(encoding="utf-8"))
    return dict(domain.get("responses") or {})


def response_text(domain_path: Path, name: str, **values: Any) -> str:
    """The first text variant of a response, with its {placeholders} filled."""
    variants = _responses(domain_path).get(name)
    if not variants:
        raise KeyError(f"{name} is not a response in {domain_path}")
    return str(variants[0]["text"]).format(**values)
