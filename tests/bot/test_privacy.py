"""Issue 15 outside the CRM: Rasa's trackers erased and purged, the CLI's forget, export and
retention on a stopped system (the running system: tests/integration/test_personal_data.py)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import cli
from bot.tracker_store import (
    CareSQLTrackerStore,
    erase_trackers,
    purge_idle_trackers,
    tracker_texts,
)
from crm_store import migrate
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import link_identity
from crm_store.interactions import ensure_conversation, log_interaction

PHONE = "13912345678"
OPENID = "o_privacy_cli"


def a_tracker(sender: str, text: str, at: float | None = None) -> DialogueStateTracker:
    listen = ActionExecuted("action_listen", timestamp=at)
    user = UserUttered(text, {"name": "greet"}, timestamp=at)
    return DialogueStateTracker.from_events(sender, [listen, user])


async def test_an_empty_tracker_put_through_the_api_erases_the_conversation(
    tmp_path: Path,
) -> None:
    store = CareSQLTrackerStore(Domain.empty(), db=str(tmp_path / "t.db"))
    await store.save(a_tracker("s1", "我的电话13912345678"))
    await store.save(a_tracker("s2", "你好"))
    await store.save(DialogueStateTracker.from_dict("s1", [], []))  # Rasa's PUT with []
    assert await store.retrieve("s1") is None
    assert await store.retrieve("s2") is not None


async def test_trackers_erased_and_purged_in_the_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = CareSQLTrackerStore(Domain.empty(), db=str(db))
    old = time.time() - 40 * 86400
    await store.save(a_tracker("old", "很久以前", at=old))
    await store.save(a_tracker("new", "刚才"))
    await store.save(a_tracker("gone", "删除我"))
    assert erase_trackers(db, ["gone", "nobody"]) == 2
    assert tracker_texts(db, "gone") == []
    idle_before = datetime.now(timezone.utc) - timedelta(days=30)
    assert purge_idle_trackers(db, idle_before=idle_before) == 1
    assert tracker_texts(db, "old") == [] and tracker_texts(db, "new") != []
    assert erase_trackers(tmp_path / "missing.db", ["x"]) == 0


@pytest.fixture
def system_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_WECHAT_APP_ID", "wx_real")  # no simulator to call
    migrate.upgrade(url)
    return url


async def test_forget_export_and_retention_from_the_command_line(
    system_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(system_env)
    with session_scope(engine) as session:
        customer = create_customer(session, name="钱多多", phone=PHONE)
        link_identity(session, customer_id=customer.id, kind="wechat_openid", value=OPENID)
        ensure_conversation(session, conversation_id=OPENID, channel="wechat")
        log_interaction(
            session,
            conversation_id=OPENID,
            channel="wechat",
            speaker="customer",
            text="钱多多的电话",
            customer_id=customer.id,
        )
    store = CareSQLTrackerStore(Domain.empty(), db=str(tmp_path / "rasa_tracker.db"))
    await store.save(a_tracker(OPENID, "钱多多的电话13912345678"))

    out = tmp_path / "export.json"
    assert cli.main(["export-customer", str(customer.id), "--out", str(out)]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["customer"]["phone"] == PHONE
    assert document["conversations"][0]["turns"][0]["text"] == "钱多多的电话"
    assert out.stat().st_mode & 0o077 == 0

    assert cli.main(["forget", str(customer.id), "--offline"]) == 0
    assert "forgotten" in capsys.readouterr().out
    assert tracker_texts(tmp_path / "rasa_tracker.db", OPENID) == []
    assert cli.main(["export-customer", str(customer.id), "--out", str(out)]) == 0
    after = out.read_text(encoding="utf-8")
    assert "钱多多" not in after and PHONE not in after and OPENID not in after
    assert cli.main(["forget", "999"]) == 2

    assert cli.main(["retention", "run"]) == 0
    assert "interaction_texts" in capsys.readouterr().out
    engine.dispose()


async def test_rasa_is_asked_to_empty_each_conversation_by_its_raw_id(tmp_path: Path) -> None:
    """Rasa's route does not percent-decode: `rest%3Ax` would be another conversation, and
    `web%20user` is not `web user`: one that the API cannot name is erased in the tracker
    database instead (bot/rasa_api.py)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from bot.privacy import Places, erase_conversations

    seen: list[tuple[str, str, bytes]] = []

    class Rasa(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Rasa)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        db = tmp_path / "t.db"
        store = CareSQLTrackerStore(Domain.empty(), db=str(db))
        await store.save(a_tracker("web user", "我的电话13912345678"))
        places = Places(db, rasa_url=url, api_token="tok")
        senders = ["rest:u1", "o_openid", "web user", "shop/u2"]
        # three conversations through Rasa, and the two stored events of `web user` in the file
        assert erase_conversations(places, senders) == 3 + 2
    finally:
        server.shutdown()
    paths = sorted(path for _, path, _ in seen)
    assert paths == [
        "/conversations/o_openid/tracker/events?token=tok",
        "/conversations/rest:u1/tracker/events?token=tok",
        "/conversations/shop/u2/tracker/events?token=tok",
    ]
    assert {body for _, _, body in seen} == {b"[]"}
    assert tracker_texts(db, "web user") == []
