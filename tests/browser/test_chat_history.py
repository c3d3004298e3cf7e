"""A late joiner's chat: the newest messages, and a line saying how many came before."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.test_web_meeting import join_through_the_ui

pytestmark = pytest.mark.browser


async def test_a_late_joiner_sees_the_newest_messages_and_how_many_are_not_shown(
    server, bots, room, new_page
):
    alice = await bots.join(room, "Alice", publish=False)
    for n in range(40):  # 320 kB of chat: over the 256 KiB a joiner gets
        await alice.send({"type": "chat", "text": f"message {n:02d} " + "😀" * 1980})
    await alice.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"].startswith("message 39"),
        timeout=20,
    )
    page = await new_page()
    await join_through_the_ui(page, f"{server.base_url}/{room}", "Bob")
    await page.click("#toggle-chat")
    messages = page.locator("#chat-messages")
    earlier = messages.locator(".chat-earlier")
    await expect(earlier).to_have_text(re.compile(r"^\d+ earlier messages are not shown$"))
    hidden = int((await earlier.inner_text()).split()[0])
    assert 0 < hidden < 40
    await expect(messages.locator(".chat-message")).to_have_count(40 - hidden)
    await expect(messages.locator(".chat-message").first).to_contain_text(f"message {hidden:02d}")
    await expect(messages.locator(".chat-message").last).to_contain_text("message 39")
