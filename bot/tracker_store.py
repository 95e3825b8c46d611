"""Rasa's SQL tracker store without the second read per turn.

With an event broker configured, `TrackerStore.save` first retrieves the stored tracker again
(every event since the session start, JSON-decoded and replayed through the domain) only to
find which events are new, then `SQLTrackerStore.save` counts the stored events to find them a
second time. Here the count alone decides, in the same session: the new events are published to
the broker (our turn log) and stored, as Rasa does, with one query less per turn.
"""

from __future__ import annotations

import json
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY


class CareSQLTrackerStore(SQLTrackerStore):
    async def save(self, tracker: DialogueStateTracker) -> None:
        with self.session_scope() as session:
            events = list(self._additional_events(session, tracker))
            for event in events:
                data = event.as_dict()
                if self.event_broker is not None:
                    self.event_broker.publish({"sender_id": tracker.sender_id, **data})
                session.add(self._row(tracker.sender_id, event.type_name, data))
            session.commit()

    def _row(self, sender_id: str, type_name: str, data: dict[str, Any]) -> Any:
        return self.SQLEvent(
            sender_id=sender_id,
            type_name=type_name,
            timestamp=data.get("timestamp"),
            intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            action_name=data.get("name"),
            data=json.dumps(data),
        )
