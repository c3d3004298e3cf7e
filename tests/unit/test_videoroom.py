"""janus.videoroom: the request bodies Visio sends and how it reads Janus' answers."""

from __future__ import annotations

import pytest

from visio.janus import videoroom as vr
from visio.janus.client import JanusError

OFFER_SDP = "v=0 client offer"
ANSWER = {"type": "answer", "sdp": "v=0 janus answer"}
OFFER = {"type": "offer", "sdp": "v=0 janus offer"}

STREAMS = [
    {"mid": "0", "type": "audio", "feed_id": 11, "active": True},
    {"mid": "1", "type": "video", "feed_id": 11},
    {"mid": "2", "type": "video", "feed_id": 12, "active": False},
    {"mid": "3", "type": "data", "active": True},  # no feed: Janus' placeholder
]


def replies_with(fake_janus, data, jsep=None):
    fake_janus.responders["message"] = lambda msg: fake_janus.ack_then_event(msg, data, jsep)


async def test_publish_joins_and_configures_with_the_offer(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "joined", "id": 77}, ANSWER)
    publisher = await vr.PublisherHandle.attach(session, 77, lambda event: None)
    published = await publisher.publish(4242, "p-3f9c2a1b", OFFER_SDP, "camera-0f")
    assert published.sdp == ANSWER["sdp"]
    sent = fake_janus.requests("message")[0]
    assert sent["body"] == {
        "request": "joinandconfigure",
        "ptype": "publisher",
        "room": 4242,
        "id": 77,
        "display": "p-3f9c2a1b",
        "token": "camera-0f",
    }
    assert sent["jsep"] == {"type": "offer", "sdp": OFFER_SDP}
    assert fake_janus.requests("attach")[0]["plugin"] == "janus.plugin.videoroom"


@pytest.mark.parametrize("jsep", [None, OFFER])
async def test_publish_without_an_answer_is_refused(fake_janus, session, jsep):
    replies_with(fake_janus, {"videoroom": "joined"}, jsep)
    publisher = await vr.PublisherHandle.attach(session, 1, lambda event: None)
    with pytest.raises(ValueError, match="no answer"):
        await publisher.publish(1, "p-00000000", OFFER_SDP, "camera-0f")


async def test_publish_refused_by_the_plugin_raises_janus_error(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "event", "error_code": 436, "error": "exists"})
    publisher = await vr.PublisherHandle.attach(session, 1, lambda event: None)
    with pytest.raises(JanusError):
        await publisher.publish(1, "p-00000000", OFFER_SDP, "camera-0f")


async def test_publisher_close_detaches(fake_janus, session):
    publisher = await vr.PublisherHandle.attach(session, 1, lambda event: None)
    await publisher.close()
    assert fake_janus.requests("detach")[0]["handle_id"] == publisher.handle.id


async def test_subscriber_join_asks_for_the_feeds_and_maps_streams(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "attached", "streams": STREAMS}, OFFER)
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    offer = await subscriber.join(4242, [11, 12])
    assert fake_janus.bodies() == [
        {
            "request": "join",
            "ptype": "subscriber",
            "room": 4242,
            "streams": [{"feed": 11}, {"feed": 12}],
            "autoupdate": False,
            "use_msid": False,
        }
    ]
    assert subscriber.joined
    assert offer.sdp == OFFER["sdp"]
    assert offer.streams == [
        vr.SubscribedStream(mid="0", media="audio", feed_id=11, active=True),
        vr.SubscribedStream(mid="1", media="video", feed_id=11, active=True),
        vr.SubscribedStream(mid="2", media="video", feed_id=12, active=False),
        vr.SubscribedStream(mid="3", media="data", feed_id=0, active=False),
    ]


async def test_subscriber_join_without_an_offer_is_refused(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "attached", "streams": []}, None)
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    with pytest.raises(ValueError, match="no subscriber offer"):
        await subscriber.join(1, [11])


async def test_update_subscribes_and_unsubscribes_feeds(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "updated", "streams": STREAMS[:2]}, OFFER)
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    offer = await subscriber.update(add=[11, 13], remove=[12])
    assert fake_janus.bodies() == [
        {
            "request": "update",
            "subscribe": [{"feed": 11}, {"feed": 13}],
            "unsubscribe": [{"feed": 12}],
        }
    ]
    assert offer is not None
    assert [s.mid for s in offer.streams] == ["0", "1"]


async def test_update_leaves_out_empty_lists(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "updated"}, OFFER)
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    await subscriber.update(add=[], remove=[5])
    await subscriber.update(add=[6], remove=[])
    assert fake_janus.bodies() == [
        {"request": "update", "unsubscribe": [{"feed": 5}]},
        {"request": "update", "subscribe": [{"feed": 6}]},
    ]


async def test_update_without_renegotiation_returns_none(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "updated"}, None)
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    assert await subscriber.update(add=[], remove=[5]) is None


async def test_start_sends_the_answer(fake_janus, session):
    replies_with(fake_janus, {"videoroom": "event", "started": "ok"})
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    await subscriber.start("v=0 client answer")
    sent = fake_janus.requests("message")[0]
    assert sent["body"] == {"request": "start"}
    assert sent["jsep"] == {"type": "answer", "sdp": "v=0 client answer"}


@pytest.mark.parametrize(
    ("quality", "stream"),
    [
        ("low", {"send": True, "substream": 0}),
        ("medium", {"send": True, "substream": 1}),
        ("high", {"send": True, "substream": 2}),
        ("off", {"send": False}),
    ],
)
async def test_set_substream_configures_the_mid(fake_janus, session, quality, stream):
    replies_with(fake_janus, {"videoroom": "event", "configured": "ok"})
    subscriber = await vr.SubscriberHandle.attach(session, lambda event: None)
    await subscriber.set_substream("3", quality)
    assert fake_janus.bodies() == [{"request": "configure", "streams": [{"mid": "3", **stream}]}]


async def test_create_room_body(fake_janus, session):
    handle = await session.attach()
    options = vr.RoomOptions(publishers=10, bitrate=800_000)
    await vr.create_room(handle, 99, "adminkey", options)
    body = fake_janus.bodies()[0]
    assert body["request"] == "create"
    assert (body["room"], body["publishers"], body["bitrate"]) == (99, 10, 800_000)
    assert body["admin_key"] == "adminkey"
    assert body["permanent"] is False
    assert (body["audiocodec"], body["videocodec"]) == ("opus", "vp8")
    assert body["audiolevel_event"] is True
    assert body["allowed"] == []  # Janus refuses a publisher without a token on the list


async def test_create_room_without_admin_key_sends_none(fake_janus, session):
    handle = await session.attach()
    await vr.create_room(handle, 99, "", vr.RoomOptions())
    assert "admin_key" not in fake_janus.bodies()[0]


@pytest.mark.parametrize("exists", [True, False])
async def test_room_exists_reads_the_flag(fake_janus, session, exists):
    fake_janus.responders["message"] = lambda msg: [
        fake_janus.plugin_success(msg, {"videoroom": "success", "room": 5, "exists": exists})
    ]
    handle = await session.attach()
    assert await vr.room_exists(handle, 5) is exists
    assert fake_janus.bodies() == [{"request": "exists", "room": 5}]


async def test_allowed_tokens_sends_the_change_and_reads_the_list(fake_janus, session):
    fake_janus.responders["message"] = lambda msg: [
        fake_janus.plugin_success(msg, {"videoroom": "success", "allowed": ["b", "a"]})
    ]
    handle = await session.attach()
    assert await vr.allowed_tokens(handle, 5, "add", {"b", "a"}) == {"a", "b"}
    assert await vr.allowed_tokens(handle, 5, "enable") == {"a", "b"}
    assert fake_janus.bodies() == [
        {"request": "allowed", "room": 5, "action": "add", "allowed": ["a", "b"]},
        {"request": "allowed", "room": 5, "action": "enable"},
    ]


async def test_destroy_room_body(fake_janus, session):
    handle = await session.attach()
    await vr.destroy_room(handle, 5)
    assert fake_janus.bodies() == [{"request": "destroy", "room": 5}]


def test_offer_marks_inactive_and_feedless_streams_inactive():
    offer = vr.subscriber_offer({"streams": STREAMS}, OFFER)
    assert [(s.mid, s.active) for s in offer.streams] == [
        ("0", True),
        ("1", True),
        ("2", False),
        ("3", False),
    ]


def test_offer_converts_mids_and_feeds():
    offer = vr.subscriber_offer({"streams": [{"mid": 4, "type": "video", "feed_id": "12"}]}, OFFER)
    assert offer.streams == [vr.SubscribedStream(mid="4", media="video", feed_id=12, active=True)]


def test_offer_without_streams_is_empty():
    assert vr.subscriber_offer({}, OFFER).streams == []


@pytest.mark.parametrize("jsep", [None, ANSWER])
def test_offer_needs_an_offer_jsep(jsep):
    with pytest.raises(ValueError):
        vr.subscriber_offer({"streams": STREAMS}, jsep)
