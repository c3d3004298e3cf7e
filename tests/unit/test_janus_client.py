"""janus.client.JanusConnection against a fake Janus on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from visio.janus import client as janus_client
from visio.janus.client import JanusConnection, JanusError, JanusEvent, JanusUnavailable

JSEP_OFFER = {"type": "offer", "sdp": "v=0 offer"}
JSEP_ANSWER = {"type": "answer", "sdp": "v=0 answer"}


class Events:
    """An on_event callback that keeps what it gets."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[JanusEvent] = asyncio.Queue()

    def __call__(self, event: JanusEvent) -> None:
        self.queue.put_nowait(event)

    async def next(self, timeout: float = 1.0) -> JanusEvent:
        return await asyncio.wait_for(self.queue.get(), timeout)


async def test_connects_with_the_janus_protocol_subprotocol(fake_janus, janus):
    assert janus.connected
    assert fake_janus.subprotocols == ["janus-protocol"]


async def test_info_returns_the_server_info(janus):
    assert (await janus.info())["name"] == "Fake Janus"


async def test_every_request_has_its_own_transaction(fake_janus, janus):
    await janus.info()
    await janus.info()
    transactions = [m["transaction"] for m in fake_janus.received]
    assert len(set(transactions)) == 2
    assert all(isinstance(t, str) and t for t in transactions)


async def test_create_session_uses_the_id_janus_gives(fake_janus, session):
    assert fake_janus.requests("create")[0]["janus"] == "create"
    assert session.id == 1001


async def test_attach_asks_for_the_plugin_in_the_session(fake_janus, session):
    handle = await session.attach("janus.plugin.videoroom")
    attach = fake_janus.requests("attach")[0]
    assert attach["plugin"] == "janus.plugin.videoroom"
    assert attach["session_id"] == session.id
    assert handle.id == 1002


async def test_sync_plugin_request_returns_the_plugin_data(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: [
        fake_janus.plugin_success(msg, {"videoroom": "success", "exists": True})
    ]
    handle = await session.attach()
    data = await handle.request({"request": "exists", "room": 7})
    assert data == {"videoroom": "success", "exists": True}
    sent = fake_janus.requests("message")[0]
    assert sent["body"] == {"request": "exists", "room": 7}
    assert (sent["session_id"], sent["handle_id"]) == (session.id, handle.id)


async def test_async_plugin_request_waits_past_the_ack_for_the_event(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: fake_janus.ack_then_event(
        msg, {"videoroom": "event", "configured": "ok"}, JSEP_ANSWER
    )
    handle = await session.attach()
    reply = await handle.message({"request": "configure"}, JSEP_OFFER)
    assert reply.data == {"videoroom": "event", "configured": "ok"}
    assert reply.jsep == JSEP_ANSWER
    assert fake_janus.requests("message")[0]["jsep"] == JSEP_OFFER


async def test_async_request_without_jsep_sends_no_jsep(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: fake_janus.ack_then_event(msg, {"ok": 1})
    handle = await session.attach()
    reply = await handle.message({"request": "start"})
    assert reply.jsep is None
    assert "jsep" not in fake_janus.requests("message")[0]


async def test_sync_request_takes_the_ack_as_its_answer(fake_janus, session):
    handle = await session.attach()
    await handle.trickle({"candidate": "c", "sdpMid": "0"})  # Janus acks trickles
    assert fake_janus.requests("trickle")[0]["candidate"] == {"candidate": "c", "sdpMid": "0"}


async def test_trickle_of_none_sends_completed(fake_janus, session):
    handle = await session.attach()
    await handle.trickle(None)
    assert fake_janus.requests("trickle")[0]["candidate"] == {"completed": True}


async def test_janus_error_raises_with_code_and_reason(fake_janus, janus):
    fake_janus.responders["create"] = lambda msg: [
        {"janus": "error", "error": {"code": 403, "reason": "Unauthorized request"}}
    ]
    with pytest.raises(JanusError) as caught:
        await janus.create_session()
    assert (caught.value.code, caught.value.reason) == (403, "Unauthorized request")
    assert not isinstance(caught.value, JanusUnavailable)


async def test_janus_error_after_ack_fails_an_async_request(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: [
        {"janus": "ack"},
        {"janus": "error", "error": {"code": 458, "reason": "No such session"}},
    ]
    handle = await session.attach()
    with pytest.raises(JanusError) as caught:
        await handle.message({"request": "join"})
    assert caught.value.code == 458


async def test_plugin_error_code_raises_from_a_sync_request(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: [
        fake_janus.plugin_success(
            msg, {"videoroom": "event", "error_code": 426, "error": "No such room (7)"}
        )
    ]
    handle = await session.attach()
    with pytest.raises(JanusError) as caught:
        await handle.request({"request": "destroy", "room": 7})
    assert (caught.value.code, caught.value.reason) == (426, "No such room (7)")


async def test_plugin_error_code_raises_from_an_async_request(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: fake_janus.ack_then_event(
        msg, {"videoroom": "event", "error_code": 436, "error": "Publisher exists"}
    )
    handle = await session.attach()
    with pytest.raises(JanusError) as caught:
        await handle.message({"request": "joinandconfigure"}, JSEP_OFFER)
    assert (caught.value.code, caught.value.reason) == (436, "Publisher exists")


async def test_replies_are_matched_by_transaction_not_by_order(fake_janus, session):
    held: list[dict] = []

    def answer_in_reverse(msg):
        held.append(msg)
        if len(held) < 2:
            return []
        return [
            fake_janus.plugin_success(m, {"room": m["body"]["room"]}, None)
            | {"transaction": m["transaction"]}
            for m in reversed(held)
        ]

    fake_janus.responders["message"] = answer_in_reverse
    handle = await session.attach()
    first, second = await asyncio.gather(
        handle.request({"request": "exists", "room": 1}),
        handle.request({"request": "exists", "room": 2}),
    )
    assert (first["room"], second["room"]) == (1, 2)


async def test_unsolicited_events_reach_the_handle_they_name(fake_janus, session):
    one, two = Events(), Events()
    first = await session.attach(on_event=one)
    second = await session.attach(on_event=two)
    await fake_janus.push(
        {
            "janus": "event",
            "session_id": session.id,
            "sender": second.id,
            "plugindata": {"plugin": "janus.plugin.videoroom", "data": {"videoroom": "talking"}},
            "jsep": JSEP_OFFER,
        }
    )
    await fake_janus.push({"janus": "webrtcup", "session_id": session.id, "sender": first.id})
    await fake_janus.push(
        {"janus": "hangup", "session_id": session.id, "sender": second.id, "reason": "DTLS alert"}
    )
    candidate = {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:1 1 udp 1 x 9 typ host"}
    await fake_janus.push(
        {"janus": "trickle", "session_id": session.id, "sender": first.id, "candidate": candidate}
    )

    event = await two.next()
    assert (event.kind, event.data, event.jsep) == ("event", {"videoroom": "talking"}, JSEP_OFFER)
    hangup = await two.next()
    assert hangup.kind == "hangup"
    assert hangup.data["reason"] == "DTLS alert"

    up = await one.next()
    assert up.kind == "webrtcup"
    trickle = await one.next()
    assert trickle.kind == "trickle"
    assert trickle.data["candidate"] == candidate
    assert one.queue.empty()
    assert two.queue.empty()


async def test_coroutine_callbacks_are_run(fake_janus, session):
    seen = asyncio.Event()

    async def on_event(event: JanusEvent) -> None:
        if event.kind == "media":
            seen.set()

    handle = await session.attach(on_event=on_event)
    await fake_janus.push({"janus": "media", "sender": handle.id, "type": "audio"})
    await asyncio.wait_for(seen.wait(), 1.0)


async def test_events_for_unknown_or_detached_handles_are_dropped(fake_janus, session):
    events = Events()
    handle = await session.attach(on_event=events)
    await handle.detach()
    assert fake_janus.requests("detach")[0]["handle_id"] == handle.id
    await fake_janus.push({"janus": "webrtcup", "sender": handle.id})
    await fake_janus.push({"janus": "webrtcup", "sender": 999_999})
    await fake_janus.push({"janus": "keepalive"})
    await janus_roundtrip(session.connection)
    assert events.queue.empty()


async def test_detaching_twice_sends_one_detach(fake_janus, session):
    handle = await session.attach()
    await handle.detach()
    await handle.detach()
    assert len(fake_janus.requests("detach")) == 1


async def test_invalid_json_from_janus_is_skipped(fake_janus, janus):
    await fake_janus.connections[-1].send("{not json")
    assert (await janus.info())["janus"] == "server_info"


async def test_apisecret_is_sent_when_set(fake_janus):
    connection = JanusConnection(fake_janus.url, api_secret="s3cret")
    await connection.connect(timeout=2.0)
    try:
        await connection.info()
    finally:
        await connection.close()
    assert fake_janus.received[0]["apisecret"] == "s3cret"


async def test_no_apisecret_is_sent_without_one(fake_janus, janus):
    await janus.info()
    assert "apisecret" not in fake_janus.received[0]


async def test_connection_drop_mid_request_fails_it_and_hangs_up_handles(fake_janus, session):
    events = Events()
    handle = await session.attach(on_event=events)
    fake_janus.responders["message"] = lambda msg: fake_janus.DROP
    with pytest.raises(JanusUnavailable):
        await handle.message({"request": "join"})
    hangup = await events.next()
    assert hangup.kind == "hangup"
    connection = session.connection
    await asyncio.wait_for(connection.closed.wait(), 1.0)
    assert not connection.connected
    assert connection._pending == {}


async def test_requests_after_the_connection_dropped_fail_at_once(fake_janus, janus):
    fake_janus.responders["info"] = lambda msg: fake_janus.DROP
    with pytest.raises(JanusUnavailable):
        await janus.info()
    with pytest.raises(JanusUnavailable, match="not connected"):
        await janus.info()
    assert len(fake_janus.received) == 1


async def test_requests_fail_before_connect():
    with pytest.raises(JanusUnavailable):
        await JanusConnection("ws://127.0.0.1:9").info()


async def test_request_times_out_with_janus_unavailable(fake_janus, janus, monkeypatch):
    monkeypatch.setattr(janus_client, "REQUEST_TIMEOUT_S", 0.05)
    fake_janus.responders["info"] = lambda msg: []
    with pytest.raises(JanusUnavailable, match="did not answer info"):
        await janus.info()
    assert janus._pending == {}
    assert janus._wants_event == set()
    assert janus.connected  # a slow answer does not close the connection


async def test_late_reply_after_a_timeout_is_ignored(fake_janus, session, monkeypatch):
    monkeypatch.setattr(janus_client, "REQUEST_TIMEOUT_S", 0.05)
    held: list[dict] = []
    fake_janus.responders["message"] = lambda msg: held.append(msg) or []
    handle = await session.attach()
    with pytest.raises(JanusUnavailable):
        await handle.message({"request": "start"})
    await fake_janus.push(fake_janus.ack_then_event(held[0], {"late": True})[1])
    assert (await session.connection.info())["janus"] == "server_info"


async def test_session_keepalives_name_the_session(fake_janus, janus, monkeypatch):
    monkeypatch.setattr(janus_client, "KEEPALIVE_S", 0.01)
    session = await janus.create_session()
    try:
        keepalive = await fake_janus.wait_for("keepalive")
    finally:
        await session.destroy()
    assert keepalive["session_id"] == session.id


async def test_destroy_stops_keepalives_and_destroys_the_session(fake_janus, session):
    await session.destroy()
    assert fake_janus.requests("destroy")[0]["session_id"] == session.id
    assert session._keepalive is not None
    await asyncio.sleep(0)
    assert session._keepalive.cancelled()


async def test_hangup_request_ignores_janus_errors(fake_janus, session):
    handle = await session.attach()
    fake_janus.responders["hangup"] = lambda msg: [
        {"janus": "error", "error": {"code": 454, "reason": "No such handle"}}
    ]
    await handle.hangup()
    assert fake_janus.requests("hangup")[0]["handle_id"] == handle.id


async def janus_roundtrip(connection: JanusConnection) -> None:
    """After this, every frame Janus sent before has been dispatched."""
    await connection.info()


async def test_a_claimed_session_takes_the_events_from_now_on(fake_janus, janus):
    session = await janus.claim_session(4242)
    (claim,) = fake_janus.requests("claim")
    assert claim["session_id"] == 4242
    seen = []
    handle = session.adopt(77, seen.append)
    await fake_janus.push({"janus": "webrtcup", "session_id": 4242, "sender": 77})
    await asyncio.sleep(0.05)
    assert [event.kind for event in seen] == ["webrtcup"]
    assert handle.id == 77
    await session.destroy()


async def test_a_released_session_sends_nothing_more(fake_janus, session):
    handle = await session.attach()
    session.release()
    sent = len(fake_janus.received)
    with pytest.raises(JanusUnavailable):
        await handle.request({"request": "list"})
    await handle.detach()  # a no-op: the handle is another process's now
    await session.destroy()  # so is the session
    assert len(fake_janus.received) == sent
