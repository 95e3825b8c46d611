"""Rasa's event types looked up in a table instead of a class-tree walk.

Reading a conversation from the tracker store turns every stored event back into an object, and
Rasa finds each event's class by walking every subclass of `Event` (`all_subclasses`, with an
`inspect.isabstract` check per class) on every event: under load that walk was about a twentieth
of the Rasa server's time (docs/benchmarks.md, the profile). The table keeps Rasa's answer
exactly: the first class of the walk with that type name wins, and a name it does not know
(a class imported later) walks the tree again and refreshes the table.
"""

from __future__ import annotations

from typing import Any

from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses

_original = events.Event.resolve_by_type
_table: dict[str, type[events.Event]] = {}


def _refresh() -> None:
    _table.clear()
    for cls in all_subclasses(events.Event):
        _table.setdefault(cls.type_name, cls)


def resolve_by_type(type_name: str, default: Any = None) -> Any:
    found = _table.get(type_name)
    if found is None:
        _refresh()
        found = _table.get(type_name)
    if found is not None:
        return found
    return _original(type_name, default)  # Rasa's answer for names no class has


def install() -> None:
    """Once per Rasa process (bot/rasa_main.py)."""
    events.Event.resolve_by_type = staticmethod(resolve_by_type)
