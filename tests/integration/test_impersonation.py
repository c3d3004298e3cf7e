"""Audit M6: guests are marked in chat, and cannot take a signed-in participant's name."""

from __future__ import annotations

import pytest

from visio.client import VisioClient, VisioError

pytestmark = pytest.mark.integration


async def test_chat_says_who_is_a_guest(people, bots):
    alice_account = await people.signed_in("alice")
    room = await alice_account.new_room(name="Who is who")
    alice = await bots.join(room, "ignored", publish=False, cookies=alice_account.cookies)
    guest = await bots.join(room, "Visitor", publish=False)
    await alice.send({"type": "chat", "text": "from the account"})
    await guest.send({"type": "chat", "text": "from a guest"})
    chat = await alice.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"] == "from a guest"
    )
    assert chat["message"]["guest"] is True and chat["message"]["name"] == "Visitor"
    mine = await guest.wait_for(
        lambda f: f["type"] == "chat" and f["message"]["text"] == "from the account"
    )
    assert mine["message"]["guest"] is False


async def test_a_guest_cannot_take_the_name_of_someone_signed_in_here(people, bots, server):
    alice_account = await people.signed_in("alice")
    room = await alice_account.new_room(name="Names")
    alice = await bots.join(room, "ignored", publish=False, cookies=alice_account.cookies)
    taken = alice.joined["you"]["name"]
    impostor = VisioClient(server.base_url, room, taken.upper(), auto_reconnect=False)
    with pytest.raises(VisioError) as refused:
        await impostor.connect()
    await impostor.close()
    assert refused.value.code == "name_taken"
    assert taken in str(refused.value)
    other = await bots.join(room, f"{taken} (really)", publish=False)  # a different name
    assert other.joined["you"]["guest"] is True
