"""What a customer does on the web chat page, in Playwright terms."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.integration.system import TOKEN, System


def visit(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.goto(url)
    return page


def open_chat(page: Page) -> None:
    page.get_by_role("button", name="打开在线客服").click()
    expect(page.get_by_role("dialog", name="悦家电器 在线客服")).to_be_visible()
    connected(page)


def connected(page: Page) -> None:
    expect(page.locator(".cw-status")).to_have_text("已连接")


def log_in(page: Page, user: str, name: str) -> None:
    page.get_by_label("选择演示会员").select_option(user)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#demo-identity")).to_have_text(f"当前身份：{name}")
    connected(page)


def send(page: Page, text: str) -> None:
    box = page.get_by_label("输入消息")
    box.fill(text)
    box.press("Enter")
    expect(user_bubbles(page).last.locator(".cw-text")).to_have_text(text)


def bot_bubbles(page: Page) -> Locator:
    return page.locator(".cw-msg.cw-bot")


def user_bubbles(page: Page) -> Locator:
    return page.locator(".cw-msg.cw-user")


def message_ids(page: Page) -> list[str]:
    ids = page.locator(".cw-msg[data-message-id]").evaluate_all(
        "nodes => nodes.map(n => n.dataset.messageId)"
    )
    return [str(i) for i in ids]


def session_id(page: Page) -> str:
    return str(page.evaluate("localStorage.getItem('carebot.session_id')"))


def trigger(system: System, session: str, intent: str, entities: dict[str, Any]) -> None:
    """What the care scheduler does: a proactive message through Rasa to the web chat."""
    url = (
        f"{system.rasa_url}/conversations/{session}/trigger_intent"
        f"?output_channel=webchat&token={TOKEN}"
    )
    body = json.dumps({"name": intent, "entities": entities}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
