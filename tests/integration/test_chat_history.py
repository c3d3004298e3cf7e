"""Audit M7: a joiner gets the newest chat within `chat_history_bytes`, not all of it."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


async def test_a_late_joiner_gets_the_newest_chat_within_the_budget(bots, room):
    alice = await bots.join(room, "Alice", publish=False)
    for n in range(40):  # 40 messages of 8 000 bytes: 320 kB, over the 256 KiB default
        await alice.send({"type": "chat", "text": f"{n:02d}" + "😀" * 1998})
    await alice.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"].startswith("39"), timeout=20
    )
    bob = await bots.join(room, "Bob", publish=False)
    assert bob.joined is not None
    chat = bob.joined["chat"]
    size = sum(len(json.dumps(m, ensure_ascii=False).encode()) + 1 for m in chat)
    assert 200 * 1024 < size <= 256 * 1024
    assert [m["text"][:2] for m in chat] == [f"{n:02d}" for n in range(40 - len(chat), 40)]
    assert bob.joined["chat_earlier"] == 40 - len(chat) > 0
