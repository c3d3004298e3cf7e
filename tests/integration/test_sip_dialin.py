"""SIP dial-in with real parts: baresip calls the server's PJSIP gateway, keys in the
room's PIN (RFC 4733), and is in the meeting with aiortc bots through Janus."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import GENEROUS_LIMITS, People, start_server, stop_server
from tests.integration.speaking import normalise, say, sentence, speaking_bot
from visio.speech.model import resolve_model_dir
from visio.speech.recognizer import Recognizer
from visio.testing.baresip import Baresip, to_phone_rate, write_wav
from visio.testing.netns import ADDRESS
from visio.testing.server import ServerProcess, free_port
from visio.testing.speech import speak

pytestmark = pytest.mark.integration

BOT_SENTENCE = "The quarterly budget review starts on Monday morning."
PHONE_SENTENCE = "I am calling from the train station near the river."


@pytest.fixture(scope="module")
def sip_server() -> Iterator[ServerProcess]:
    port = free_port()
    pair = start_server(
        guests_create_rooms=True,
        lobby_timeout_s=20,
        sip_enabled=True,
        sip_host=ADDRESS,
        sip_port=port,
        sip_rtp_ports="41000-41999",
        sip_pin_tries_per_hour=4,
        **GENEROUS_LIMITS,
    )
    pair[0].sip_uri = f"sip:visio@{ADDRESS}:{port}"  # type: ignore[attr-defined]
    yield pair[0]
    stop_server(*pair)


@pytest.fixture
async def sip_people(sip_server: ServerProcess) -> AsyncIterator[People]:
    pool = People(sip_server)
    yield pool
    await pool.close()


@pytest.fixture
async def sip_bots(sip_server: ServerProcess):
    from tests.conftest import Bots

    pool = Bots(sip_server)
    yield pool
    await pool.close()


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Baresip]:
    caller = Baresip(tmp_path / "baresip")
    await caller.start()
    yield caller
    await caller.stop()


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory: pytest.TempPathFactory) -> Recognizer:
    return Recognizer(resolve_model_dir(None, tmp_path_factory.mktemp("speech")), threads=2)


async def dial_in(phone: Baresip, server: ServerProcess, pin: str) -> float:
    """Call and key in the PIN; the time the call was answered."""
    await phone.dial(server.sip_uri)  # type: ignore[attr-defined]
    await phone.wait_event("CALL_ESTABLISHED")
    answered = time.monotonic()
    await asyncio.sleep(1.0)  # the welcome prompt has started
    await phone.keys(pin + "#")
    return answered


def phone_in(client) -> str | None:
    for participant in client.participants.values():
        if participant["name"].startswith("Phone"):
            return participant["id"]
    return None


async def wait_phone(client, timeout: float = 20.0) -> str:
    await client.wait_until(lambda: phone_in(client) is not None, timeout=timeout)
    return phone_in(client)  # type: ignore[return-value]


def as_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    out = [
        f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]
    ]
    return np.concatenate(out).astype(np.float32) / 32768


def recorder(client, participant: str) -> list[np.ndarray]:
    """48 kHz mono samples of what `client` receives from `participant`'s microphone."""
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)

    def keep(track, frame) -> None:
        if track.participant == participant and track.media == "audio":
            for mono in resampler.resample(frame):
                chunks.append(mono.to_ndarray().reshape(-1))

    client.frame_listeners.append(keep)
    return chunks


def share_of_words(said: str, heard: str) -> float:
    """How many of the sentence's words were recognised (telephone audio is 8 kHz G.711:
    the small model misses a word or two, and prompts surround the sentence)."""
    words = normalise(said).split()
    found = set(heard.split())
    return sum(word in found for word in words) / len(words)


def words_heard(recognizer: Recognizer, samples: np.ndarray, rate: int) -> str:
    return normalise(recognizer.transcribe(as_16k(samples, rate), language="en").text)


async def test_a_phone_joins_by_pin_hears_is_heard_and_captioned_then_muted_and_removed(
    sip_server, sip_people, sip_bots, phone, recognizer, tmp_path
):
    alice = await sip_people.signed_in("alice")
    room = await alice.new_room()
    info = (await alice.api("GET", f"/api/rooms/{room}")).json()
    assert info["dial_in"]["sip_uri"].startswith("sip:visio@")
    pin = info["dial_in"]["pin"]
    owner, voice = await speaking_bot(sip_bots, room, "Alice", cookies=alice.cookies)

    await dial_in(phone, sip_server, pin)
    phone_id = await wait_phone(owner)
    assert owner.participants[phone_id]["name"] == "Phone …42"
    from_phone = recorder(owner, phone_id)
    await owner.wait_frames(phone_id, "audio", count=25)
    published = time.monotonic()  # the gateway then says "You are now in the meeting."
    await owner.send({"type": "captions", "on": True})
    await owner.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=60)
    spoken = write_wav(
        tmp_path / "phone.wav", to_phone_rate(speak(PHONE_SENTENCE, tmp_path / "p.wav"))
    )

    await asyncio.sleep(max(0.0, published + 4.0 - time.monotonic()))  # the prompt is over
    # Both speak at once: each direction is its own (the phone does not hear itself).
    await phone.speak(spoken)
    speaking_since = time.monotonic()
    await say(voice, sentence(BOT_SENTENCE, tmp_path), gap=1.5)
    await asyncio.sleep(max(0.0, speaking_since + 5.0 - time.monotonic()))
    heard_by_bot = words_heard(recognizer, np.concatenate(from_phone), 48_000)
    assert share_of_words(PHONE_SENTENCE, heard_by_bot) >= 0.6, heard_by_bot
    caption = await owner.wait_for(
        lambda f: f["type"] == "caption" and f["final"] and f["participant"] == phone_id,
        timeout=30,
    )  # the phone's voice is captioned like anyone's
    assert caption["name"] == "Phone …42 (guest)"
    assert share_of_words(PHONE_SENTENCE, normalise(caption["text"])) >= 0.6, caption["text"]

    # Muted by the owner: Janus stops forwarding the phone's voice.
    await owner.send({"type": "moderate", "action": "mute", "id": phone_id})
    await asyncio.sleep(1.0)
    before = owner.frames_from(phone_id, "audio")
    await asyncio.sleep(1.5)
    assert owner.frames_from(phone_id, "audio") <= before + 5

    # Removed: the gateway says so and hangs up; nobody is left behind.
    await owner.send({"type": "moderate", "action": "remove", "id": phone_id})
    await phone.wait_event("CALL_CLOSED", timeout=15)
    await owner.wait_until(lambda: phone_in(owner) is None, timeout=10)

    heard, rate = phone.heard()
    write_wav(tmp_path / "heard.wav", heard, rate)  # kept for a failure's inspection
    heard_by_phone = words_heard(recognizer, heard, rate)
    assert share_of_words(BOT_SENTENCE, heard_by_phone) >= 0.6, heard_by_phone


async def test_a_phone_waits_in_the_lobby_is_admitted_or_denied_and_leaves_nobody(
    sip_server, sip_people, sip_bots, phone
):
    alice = await sip_people.signed_in("alice")
    room = await alice.new_room(access="trusted")  # guests, phones too, wait to be let in
    pin = (await alice.api("GET", f"/api/rooms/{room}")).json()["dial_in"]["pin"]
    owner = await sip_bots.join(room, "Alice", cookies=alice.cookies)
    await dial_in(phone, sip_server, pin)
    update = await owner.wait_for(
        lambda f: f["type"] == "lobby_update" and len(f["waiting"]) == 1, timeout=20
    )
    waiting = update["waiting"][0]
    assert waiting["name"] == "Phone …42"
    await owner.send({"type": "admit", "id": waiting["id"]})
    phone_id = await wait_phone(owner)
    await owner.wait_frames(phone_id, "audio", count=10)
    await phone.hang_up()
    await owner.wait_until(lambda: phone_in(owner) is None, timeout=10)
    people = (await alice.api("GET", f"/api/rooms/{room}/participants")).json()
    assert [p["name"] for p in people["participants"]] == ["Alice"]

    # Denied: told so and hung up, never in the meeting, nobody left waiting.
    phone.events.clear()
    mark = len(owner.frames)
    await dial_in(phone, sip_server, pin)
    update = await owner.wait_for(
        lambda f: f["type"] == "lobby_update" and len(f["waiting"]) == 1,
        since=mark,
        timeout=20,
    )
    await owner.send({"type": "deny", "id": update["waiting"][0]["id"]})
    await phone.wait_event("CALL_CLOSED", timeout=15)
    people = (await alice.api("GET", f"/api/rooms/{room}/participants")).json()
    assert [p["name"] for p in people["participants"]] == ["Alice"]
    assert people["waiting"] == []


def invite(body: str, content_type: str = "application/sdp") -> bytes:
    """A bare INVITE from a made-up phone, with `body` as its offer."""
    branch = f"z9hG4bK{time.monotonic_ns()}"
    return (
        f"INVITE sip:visio@{ADDRESS} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {ADDRESS}:5999;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:0600000001@{ADDRESS}>;tag=t1\r\n"
        f"To: <sip:visio@{ADDRESS}>\r\n"
        f"Call-ID: {branch}@test\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:0600000001@{ADDRESS}:5999>\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def final_answer(port: int, message: bytes) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ADDRESS, 5999))
        sock.settimeout(5)
        sock.sendto(message, (ADDRESS, port))
        while True:
            status = sock.recv(65535).decode(errors="replace").split("\r\n")[0]
            if not status.startswith("SIP/2.0 1"):  # provisional answers
                return status


SDP_ONLY_OPUS = (
    "v=0\r\no=- 1 1 IN IP4 10.77.0.1\r\ns=-\r\nc=IN IP4 10.77.0.1\r\nt=0 0\r\n"
    "m=audio 5998 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
)


async def test_an_offer_without_common_codec_or_broken_sdp_gets_a_sip_error(
    sip_server, sip_people, sip_bots
):
    alice = await sip_people.signed_in("alice")
    room = await alice.new_room()
    owner = await sip_bots.join(room, "Alice", cookies=alice.cookies)
    port = int(sip_server.sip_uri.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    no_codec = await asyncio.to_thread(final_answer, port, invite(SDP_ONLY_OPUS))
    assert no_codec.startswith("SIP/2.0 488"), no_codec
    broken = await asyncio.to_thread(final_answer, port, invite("v=0\r\nthis is not sdp\r\n"))
    assert broken.startswith("SIP/2.0 400 Bad SDP"), broken  # a syntax error: 400 (RFC 3261)
    await asyncio.sleep(1.0)
    assert phone_in(owner) is None


async def test_wrong_pins_are_asked_again_then_hung_up_then_refused(
    sip_server, sip_people, sip_bots, phone
):
    """Last in this module: the caller's address is then refused for an hour."""
    alice = await sip_people.signed_in("alice")
    room = await alice.new_room()
    owner = await sip_bots.join(room, "Alice", cookies=alice.cookies)
    await phone.dial(sip_server.sip_uri)
    await phone.wait_event("CALL_ESTABLISHED")
    await asyncio.sleep(1.0)
    # Keys are queued: each try reads its own, up to '#'. The phone sends about four a
    # second, so the later wrong PINs are short ones (wrong all the same).
    for wrong in ("111111111#", "1#", "2#"):
        await phone.keys(wrong)
    await phone.wait_event("CALL_CLOSED", timeout=20)
    assert phone_in(owner) is None
    phone.events.clear()
    await phone.dial(sip_server.sip_uri)  # a 4th wrong PIN: the address is then blocked
    await phone.wait_event("CALL_ESTABLISHED")
    await asyncio.sleep(1.0)
    await phone.keys("3#")
    await phone.wait_event("CALL_CLOSED", timeout=20)
    phone.events.clear()
    await phone.dial(sip_server.sip_uri)
    closed = await phone.wait_event("CALL_CLOSED", timeout=10)
    assert "403" in closed.get("param", "") or "Too many" in closed.get("param", ""), closed
    assert "CALL_ESTABLISHED" not in phone.event_types()
