"""The real rasa-webchat widget (npm `rasa-webchat` 1.0.1, as sites that already embed it have
it) on a page of another, allowed origin, pointed at our socket.io channel: every answer is
shown, buttons answer, and a reload keeps the conversation (docs/webchat.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bot.settings import PROJECT_DIR
from tests.integration.system import System

pytestmark = pytest.mark.integration

NewContext = Callable[..., BrowserContext]
RASA_WEBCHAT = PROJECT_DIR / "node_modules" / "rasa-webchat" / "lib" / "index.js"


def brand_page(system: System) -> str:
    """A page with nothing of ours: rasa-webchat's script and its documented set-up."""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>'
        '<h1>已接入 rasa-webchat 的品牌网站</h1><div id="webchat"></div>'
        '<script src="/rasa-webchat.js"></script>'
        "<script>WebChat.default({"
        f'selector: "#webchat", socketUrl: "{system.rasa_url}", socketPath: "/socket.io/", '
        'initPayload: "/greet", title: "会员服务", params: {storage: "session"}'
        "}, null);</script></body></html>"
    )


@contextmanager
def brand_site(system: System) -> Iterator[str]:
    """The brand's own site on its allowed origin (http://localhost:<shop port>)."""
    assert system.shop_port is not None
    files = {
        "/": (brand_page(system).encode(), "text/html; charset=utf-8"),
        "/rasa-webchat.js": (RASA_WEBCHAT.read_bytes(), "application/javascript"),
    }

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = files.get(self.path.split("?")[0], (b"not found", "text/plain"))
            self.send_response(200 if body != b"not found" else 404)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", system.shop_port), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{system.shop_port}/"
    finally:
        server.shutdown()
        server.server_close()


def answers(page: Page) -> list[str]:
    return [text.strip() for text in page.locator(".rw-response").all_inner_texts()]


def open_widget(page: Page) -> None:
    """Opens the chat unless rasa-webchat restored it open (it keeps that in the session)."""
    page.locator(".rw-launcher").wait_for()
    if not page.locator(".rw-new-message").is_visible():
        page.locator(".rw-launcher").click()
    expect(page.locator(".rw-new-message")).to_be_visible()


def more_answers_than(page: Page, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while len(answers(page)) <= count:
        assert time.monotonic() < deadline, f"no answer after {answers(page)}"
        page.wait_for_timeout(200)


def say(page: Page, text: str) -> None:
    box = page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")


def test_rasa_webchat_shows_every_answer_and_buttons_answer(
    system: System, new_context: NewContext
) -> None:
    assert RASA_WEBCHAT.exists(), "npm ci installs rasa-webchat (package.json)"
    with brand_site(system) as url:
        page = new_context().new_page()
        page.goto(url)
        open_widget(page)
        expect(page.locator(".rw-response").first).to_be_visible()  # the answer to /greet

        say(page, "你们开发票吗")
        expect(page.locator(".rw-response").last).to_contain_text("发票")

        say(page, "ｑｗｅｒｔｙ zxcv 囧囧")  # gibberish: the bot asks again, with buttons
        expect(page.locator(".rw-reply").first).to_be_visible()
        shown = len(answers(page))
        page.locator(".rw-reply").first.click()
        more_answers_than(page, shown)
        page.wait_for_timeout(1_500)  # every message of that answer
        before = answers(page)

        page.reload()
        open_widget(page)
        expect(page.locator(".rw-response").last).to_have_text(before[-1])
        assert answers(page)[: len(before)] == before  # the same conversation, nothing lost
