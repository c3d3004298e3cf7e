"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.firefox import Firefox, FirefoxPage
from visio.testing.xvfb import VirtualScreen

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class PageErrors(list[str]):
    """Uncaught errors of the pages of a test: there must be none."""


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator:
    contexts = []
    errors = PageErrors()

    async def make(locale: str = "en-US") -> Page:
        context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 720})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        return page

    make.errors = errors  # type: ignore[attr-defined]
    yield make
    for context in contexts:
        await context.close()
    assert not errors, errors


@pytest.fixture(scope="session")
async def firefox() -> AsyncIterator[Firefox]:
    """Debian's Firefox ESR over WebDriver BiDi (tests/firefox/driver.mjs)."""
    firefox = Firefox()
    await firefox.start()
    yield firefox
    await firefox.close()


@pytest.fixture(scope="session")
async def screen_firefox() -> AsyncIterator[Firefox]:
    """A Firefox ESR with a window on a virtual screen (Xvfb), which it shares through its
    real getDisplayMedia path; headless Firefox has no screen to share."""
    screen = VirtualScreen()
    firefox = Firefox(display=screen.start())
    try:
        await firefox.start()
        yield firefox
    finally:
        await firefox.close()
        screen.stop()


@pytest.fixture
async def new_firefox_page(firefox: Firefox) -> AsyncIterator:
    """Opens Firefox pages for one test, checks they had no uncaught error, closes them."""
    async for make in firefox_pages(firefox):
        yield make


@pytest.fixture
async def new_screen_firefox_page(screen_firefox: Firefox) -> AsyncIterator:
    """The same, in the Firefox that can share its screen."""
    async for make in firefox_pages(screen_firefox):
        yield make


async def firefox_pages(firefox: Firefox) -> AsyncIterator:
    pages: list[FirefoxPage] = []

    async def make() -> FirefoxPage:
        page = await firefox.new_page()
        pages.append(page)
        return page

    yield make
    errors = [error for page in pages for error in await page.errors()]
    for page in pages:
        await page.close()
    assert not errors, errors
