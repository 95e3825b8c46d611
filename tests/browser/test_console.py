"""The staff console in headless chromium against the real system, beside a customer in the web
chat widget: login, the queue, the live conversation view, notes, close (screenshots under
docs/screenshots/console-*.png)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bot.console.texts import response_text
from bot.settings import PROJECT_DIR
from crm_store.campaigns import set_campaign_enabled, set_daily_cap
from crm_store.demo import DEMO_DAILY_CAPS
from crm_store.handoffs import close_handoff, find_open_handoff
from crm_store.masking import mask_name
from tests.browser.conftest import SCREENSHOTS
from tests.browser.widget import bot_bubbles, log_in, send, visit
from tests.integration.system import System
from tests.integration.test_care import crm
from tests.integration.test_handoff import console_url

pytestmark = pytest.mark.integration

NewContext = Callable[..., BrowserContext]
DOMAIN = PROJECT_DIR / "domain.yml"
LIVE_MS = 1_000  # a customer's message shows in the console within a second


@pytest.fixture(autouse=True)
def hand_back_the_demo_customers(system: System) -> Iterator[None]:
    """Whatever a test leaves open, the demo customers' conversations go back to the bot: other
    tests chat as them too."""
    yield
    for sender in ("demo", "demo_lunar"):
        with crm(system) as session:
            handoff = find_open_handoff(session, conversation_id=sender)
            if handoff is not None:
                close_handoff(session, handoff_id=handoff.id, outcome="resolved")
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        status, answer = system.post(f"/conversations/{sender}/tracker/events", events, token=True)
        assert status == 200, answer


def console_login(page: Page, url: str, username: str, password: str = "carebot-demo") -> None:
    page.goto(url + "/queue")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


def test_a_wrong_password_is_refused(system: System, new_context: NewContext) -> None:
    page = new_context().new_page()
    console_login(page, console_url(system), "agent", "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("用户名或密码不正确")
    page.goto(console_url(system) + "/queue")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_an_agent_serves_a_web_chat_customer(system: System, new_context: NewContext) -> None:
    url = console_url(system)
    shots: dict[str, bytes] = {}
    customer = visit(new_context(), system.rasa_url + "/webhooks/webchat/")
    log_in(customer, "demo_lunar", "李娜")
    send(customer, "转人工")
    expect(bot_bubbles(customer).last).to_contain_text("正在为您转接人工客服")

    agent = new_context().new_page()
    agent.goto(url + "/login")
    shots["console-login.png"] = agent.screenshot()
    console_login(agent, url, "agent")
    row = agent.locator("tr", has_text=mask_name("李娜")).filter(
        has=agent.get_by_role("button", name="接入")
    )
    expect(row).to_be_visible()
    expect(row).to_contain_text("客户要求")
    shots["console-queue.png"] = agent.screenshot()

    row.get_by_role("button", name="接入").click()
    expect(agent.get_by_role("heading", name=re.compile("会话 #"))).to_contain_text("接待中")
    transcript = agent.locator("#transcript")
    expect(transcript.locator("li.customer", has_text="转人工")).to_be_visible()
    expect(agent.locator(".card .tier")).to_have_text("银卡")
    joined = response_text(DOMAIN, "utter_handoff_agent_joined", agent="客服小张")
    expect(bot_bubbles(customer).last).to_have_text(re.compile(re.escape(joined)))

    agent.get_by_placeholder("输入回复").fill("李女士您好，请问需要查询什么？")
    agent.get_by_role("button", name="发送").click()
    expect(bot_bubbles(customer).last).to_contain_text("李女士您好，请问需要查询什么？")

    send(customer, "我的积分快过期了吗")
    asked = transcript.locator("li.customer", has_text="我的积分快过期了吗")
    expect(asked).to_be_visible(timeout=LIVE_MS + 2_000)  # the poll plus a loaded machine

    agent.get_by_placeholder("仅同事可见").fill("老客户，积分 899，上次评价不满意")
    agent.get_by_role("button", name="添加备注").click()
    expect(agent.locator("#notes")).to_contain_text("老客户，积分 899")
    shots["console-conversation.png"] = agent.screenshot()

    agent.get_by_label("已解决").check()
    agent.get_by_role("button", name="结束并交还机器人").click()
    expect(agent).to_have_url(re.compile(r"/queue$"))
    ended = response_text(DOMAIN, "utter_handoff_ended")
    expect(bot_bubbles(customer).filter(has_text=ended).last).to_be_visible()
    shots["console-close-customer.png"] = customer.screenshot()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, image in shots.items():  # written last: docs/ only shows a run that passed
        (SCREENSHOTS / name).write_bytes(image)


def test_a_supervisor_takes_over_from_an_agent(system: System, new_context: NewContext) -> None:
    url = console_url(system)
    customer = visit(new_context(), system.rasa_url + "/webhooks/webchat/")
    log_in(customer, "demo", "王小明")
    send(customer, "我要人工服务")
    expect(bot_bubbles(customer).last).to_contain_text("正在为您转接人工客服")

    agent = new_context().new_page()
    console_login(agent, url, "agent2")
    waiting = agent.locator("tr", has_text=mask_name("王小明")).filter(
        has=agent.get_by_role("button", name="接入")
    )
    waiting.get_by_role("button", name="接入").click()
    expect(agent.get_by_role("heading", name=re.compile("会话 #"))).to_contain_text("接待中")

    supervisor = new_context().new_page()
    console_login(supervisor, url, "supervisor")
    live = supervisor.locator("tr", has_text=mask_name("王小明")).filter(has_text="客服小李")
    expect(live).to_be_visible()
    image = supervisor.screenshot()
    live.get_by_role("button", name="接管").click()
    taken = response_text(DOMAIN, "utter_handoff_transferred", agent="主管王姐")
    expect(bot_bubbles(customer).last).to_have_text(re.compile(re.escape(taken)))
    expect(supervisor.get_by_role("button", name="发送")).to_be_visible()

    supervisor.get_by_label("需回电").check()
    supervisor.get_by_role("button", name="结束并交还机器人").click()
    ended = response_text(DOMAIN, "utter_handoff_ended")
    expect(bot_bubbles(customer).filter(has_text=ended).last).to_be_visible()
    (SCREENSHOTS / "console-supervisor.png").write_bytes(image)


def test_a_manager_previews_caps_and_switches_a_campaign(
    system: System, new_context: NewContext
) -> None:
    url = console_url(system)
    page = new_context().new_page()
    console_login(page, url, "manager")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    page.get_by_role("link", name="活动管理").click()
    row = page.locator("tr[data-campaign=birthday]")
    expect(row).to_contain_text("已开启")
    try:
        row.get_by_role("link", name="受众预览与上限").click()
        expect(page.locator("#preview")).to_contain_text("下一次安排的受众")
        page.get_by_label("每日上限").fill("3")
        page.get_by_role("button", name="保存上限").click()
        expect(page.locator("#daily-cap")).to_have_text("3")
        page.get_by_role("button", name="关闭此活动").click()
        expect(page.locator("#status")).to_have_text("已关闭")
        expect(page.locator("#changes")).to_contain_text("开关")
        image = page.screenshot(full_page=True)
        page.get_by_role("button", name="开启此活动").click()
        expect(page.locator("#status")).to_have_text("已开启")
    finally:  # the shared system's demo campaigns as the seed made them
        with crm(system) as session:
            set_campaign_enabled(session, key="birthday", enabled=True, actor="test")
            set_daily_cap(
                session, key="birthday", daily_cap=DEMO_DAILY_CAPS["birthday"], actor="test"
            )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "console-campaign.png").write_bytes(image)
