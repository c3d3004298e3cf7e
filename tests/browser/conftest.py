"""Headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright

from visio.testing.chromium import CHROMIUM_ARGS
from visio.testing.firefox import Firefox, FirefoxPage

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


@pytest.fixture
async def new_firefox_page(firefox: Firefox) -> AsyncIterator:
    """Opens Firefox pages for one test, checks they had no uncaught error, closes them."""
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
