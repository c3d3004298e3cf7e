"""A busy server tells the web app when to come back: the page says so, waits, and joins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.conftest import start_server, stop_server
from tests.integration.joining import join_once
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slow_server() -> Iterator[ServerProcess]:
    """A process that takes one new join every five seconds."""
    process, provider = start_server(idp=False, max_joins_per_second=0.2)
    yield process
    stop_server(process, provider)


async def test_the_web_app_waits_when_told_busy_then_joins(slow_server, new_page):
    room = slow_server.create_room()
    page = await new_page()
    await page.goto(f"{slow_server.base_url}/{room}")
    await expect(page.locator("#prejoin")).to_be_visible()
    first = await join_once(slow_server.base_url, room)  # takes this five seconds' join
    assert first["type"] == "joined"
    await page.fill("#display-name", "Agent")
    await page.click("#join-button")
    await expect(page.locator("#prejoin-error")).to_have_text(
        "Many people are joining right now. You will be let in in a moment…"
    )
    await expect(page.locator("#meeting")).to_be_visible(timeout=30_000)
    _, health = slow_server.get("/healthz")
    assert health["limits"]["joins"]["refused"]["busy"] >= 1
    assert health["limits"]["joins"]["accepted"] == 2
