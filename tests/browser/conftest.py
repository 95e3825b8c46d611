"""Headless Debian chromium driven by Playwright against the real system's web chat page."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from bot.settings import PROJECT_DIR
from tests.integration.system import System

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = PROJECT_DIR / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
expect.set_options(timeout=30_000)  # a bot turn on a busy 2-core machine takes seconds


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it is
# open, which would break asyncio.run in the tests that come after the browser tests.
@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def webchat_url(system: System) -> str:
    return system.rasa_url + "/webhooks/webchat/"


@pytest.fixture
def new_context(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Fresh browser profiles (own localStorage), closed after the test."""
    contexts: list[BrowserContext] = []

    def make(phone: bool = False) -> BrowserContext:
        size = {"viewport": PHONE, "is_mobile": True, "has_touch": True} if phone else {}
        context = chromium.new_context(locale="zh-CN", **(size or {"viewport": DESKTOP}))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def keep_screenshot(page: Page, name: str) -> None:
    """Called as a test's last step, so docs/ only ever shows a page that passed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))
