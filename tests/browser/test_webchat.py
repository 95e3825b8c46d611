"""The web chat widget in headless chromium against the real system (Rasa, actions, demo CRM):
a member logs in and chats, buttons answer, a reload shows the history once, proactive messages
arrive online and offline, and the page works on a phone."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, expect

from crm_store.customers import create_customer, get_customer
from crm_store.identities import link_identity
from crm_store.webchat import undelivered
from tests.browser.conftest import keep_screenshot
from tests.browser.widget import (
    bot_bubbles,
    connected,
    log_in,
    message_ids,
    open_chat,
    send,
    session_id,
    trigger,
    user_bubbles,
    visit,
)
from tests.integration.system import System
from tests.integration.test_care import crm

pytestmark = pytest.mark.integration

NewContext = Callable[..., BrowserContext]


def demo_points(system: System) -> int:
    with crm(system) as session:
        return get_customer(session, customer_id=1).points_balance


def test_a_member_logs_in_and_reads_his_points_again_after_a_reload(
    system: System, webchat_url: str, new_context: NewContext
) -> None:
    page = visit(new_context(), webchat_url)
    log_in(page, "demo", "王小明")
    expect(page.locator(".cw-who")).to_have_text("王小明，您好")
    assert session_id(page) == "demo"

    send(page, "我的积分还有多少")

    answer = bot_bubbles(page).filter(has_text="当前积分")
    expect(answer.last).to_contain_text(f"您是金卡会员，当前积分 {demo_points(system)} 分。")
    expect(page.locator(".cw-typing")).to_be_hidden()
    shown = message_ids(page)
    page.reload()
    open_chat(page)
    expect(bot_bubbles(page).filter(has_text="当前积分").last).to_be_visible()
    after = message_ids(page)  # the bot may still be finishing its turn: more may follow
    assert set(shown) <= set(after) and len(set(after)) == len(after)
    expect(user_bubbles(page).filter(has_text="我的积分还有多少").last).to_be_visible()
    keep_screenshot(page, "webchat-desktop.png")


def a_member_behind(system: System, session: str) -> str:
    """Makes the anonymous session a new member's, as a one-time code would (surveys go to
    members only), and returns it."""
    with crm(system) as db:
        member = create_customer(db, name="孙丽", phone=f"134{uuid.uuid4().int % 10**8:08d}")
        link_identity(db, customer_id=member.id, kind="web_session", value=session)
    return session


def test_a_proactive_survey_reaches_an_open_page_and_is_answered_with_a_button(
    system: System, webchat_url: str, new_context: NewContext
) -> None:
    page = visit(new_context(), webchat_url)
    connected(page)

    trigger(
        system,
        a_member_behind(system, session_id(page)),
        "EXTERNAL_survey",
        {"product": "电热水壶"},
    )

    expect(page.locator(".cw-badge")).to_have_text("1")
    open_chat(page)
    expect(bot_bubbles(page).filter(has_text="您最近购买的电热水壶用得怎么样")).to_have_count(1)
    page.get_by_role("button", name="5 非常满意").click()
    expect(user_bubbles(page).last.locator(".cw-text")).to_have_text("5 非常满意")
    expect(page.get_by_role("button", name="4 满意")).to_be_disabled()
    expect(bot_bubbles(page).filter(has_text="请打 0-10 分")).to_have_count(1)


def test_a_message_sent_while_the_page_is_closed_arrives_once_when_it_opens_again(
    system: System, webchat_url: str, new_context: NewContext
) -> None:
    context = new_context()
    page = visit(context, webchat_url)
    connected(page)
    session = a_member_behind(system, session_id(page))
    page.close()

    trigger(system, session, "EXTERNAL_survey", {"product": "空气炸锅"})

    page = visit(context, webchat_url)
    open_chat(page)
    assert session_id(page) == session
    expect(bot_bubbles(page).filter(has_text="空气炸锅")).to_have_count(1)
    page.wait_for_timeout(2_000)  # room for a second delivery, which must not come
    expect(bot_bubbles(page).filter(has_text="空气炸锅")).to_have_count(1)
    with crm(system) as db:  # the widget acknowledged what it showed
        assert undelivered(db, session_id=session) == []
    page.reload()
    open_chat(page)
    expect(bot_bubbles(page).filter(has_text="空气炸锅")).to_have_count(1)


def test_logging_out_continues_as_a_new_anonymous_visitor(
    webchat_url: str, new_context: NewContext
) -> None:
    page = visit(new_context(), webchat_url)
    log_in(page, "demo", "王小明")

    page.get_by_role("button", name="退出").click()

    expect(page.locator("#demo-identity")).to_have_text("当前身份：访客")
    connected(page)
    assert re.fullmatch(r"web-[0-9a-f]{32}", session_id(page))
    assert page.evaluate("localStorage.getItem('carebot.token')") is None
    expect(page.locator(".cw-msg")).to_have_count(0)


def test_the_widget_embedded_in_another_site_chats_with_the_server(
    system: System, new_context: NewContext
) -> None:
    assert system.shop_port is not None  # an origin the system allows (CAREBOT_ALLOWED_ORIGINS)
    with serving(embedding(system), system.shop_port) as shop_url:
        page = visit(new_context(), shop_url)
        open_chat(page)

        send(page, "你好")

        expect(bot_bubbles(page).filter(has_text="您好").first).to_be_visible()
        assert session_id(page).startswith("web-")


@contextmanager
def serving(html: str, port: int = 0) -> Iterator[str]:
    """Another site on loopback (`localhost`, another port: another origin; Chromium would
    not let a page on a public address load scripts from loopback)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def embedding(system: System) -> str:
    """A third-party page with nothing of ours but the one script tag."""
    src = f"{system.rasa_url}/webhooks/webchat/static/widget.js"
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>'
        f'<h1>别家商城</h1><script src="{src}" data-server="{system.rasa_url}"></script>'
        "</body></html>"
    )


def test_on_a_phone_the_chat_fills_the_screen(
    system: System, webchat_url: str, new_context: NewContext
) -> None:
    page = visit(new_context(phone=True), webchat_url)
    open_chat(page)

    send(page, "你好")

    expect(bot_bubbles(page).filter(has_text="您好").first).to_be_visible()
    assert page.locator(".cw-panel").bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 667}
    expect(page.get_by_role("button", name="打开在线客服")).to_be_hidden()
    page.get_by_role("button", name="关闭对话窗口").click()
    expect(page.get_by_role("button", name="打开在线客服")).to_be_focused()
    page.get_by_role("button", name="打开在线客服").click()
    expect(page.get_by_label("输入消息")).to_be_focused()
    keep_screenshot(page, "webchat-phone.png")
