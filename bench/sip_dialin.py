"""SIP dial-in: join time, mouth-to-ear delay both ways, gateway CPU per call.

A bot sits in a room; baresip (Debian) calls the server's SIP gateway N times, one after
the other, keys in the room's PIN, and:

- join: from the '#' of the PIN to the first sound of the meeting in the phone's ear (the
  bot plays a steady 1 kHz tone all along), and from the dial to the answer;
- phone → bot: baresip switches its source to a file that holds a 1 kHz tone 0.5 s in;
  delay = when the bot's decoder hands over the tone's onset - when the file reached it;
- bot → phone: the bot plays a 1.5 kHz tone; delay = where it starts in what baresip
  recorded (sample 0 = its first RTP packet, the CALL_RTPESTAB event) - when the bot's
  track emitted it.

Each includes both jitter buffers, the gateway's queues, G.711 and Janus. Then K calls at
once hold for a window: the server process's CPU (the gateway runs in it) above the same
window with no call, per call; Janus' too. Runs as root, in its own namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import _harness
import av
import numpy as np

from visio.client.media import AUDIO_RATE, PcmAudioTrack, tone
from visio.client.session import VisioClient
from visio.testing.baresip import PHONE_RATE, Baresip, write_wav
from visio.testing.netns import ADDRESS
from visio.testing.server import free_port

BEEP_HZ = 1000.0
BOT_TONE_HZ = 1500.0


def onset(samples: np.ndarray, rate: int, hz: float, start: int = 0) -> int | None:
    """The first sample from `start` where a 20 ms window is mostly a tone of `hz`."""
    window = rate // 50
    probe = np.exp(-2j * np.pi * hz * np.arange(window) / rate)
    for begin in range(start, len(samples) - window, window // 4):
        chunk = samples[begin : begin + window].astype(np.float64)
        energy = float(np.dot(chunk, chunk))
        if energy < window * 300.0**2:  # quieter than about -40 dBFS
            continue
        share = 2 * abs(np.dot(chunk, probe)) ** 2 / (window * energy)
        if share > 0.7:
            return begin
    return None


def beeps() -> np.ndarray:
    """'The meeting' for the join time: a steady 1 kHz tone (0.5 s, whole periods, looped),
    so the first sound is heard within a 5 ms step of when it could be."""
    return tone(BEEP_HZ, 0.5, 0.2)


class Ear:
    """What the bot receives from one participant: samples with their arrival times."""

    def __init__(self, client: VisioClient) -> None:
        self.participant: str | None = None
        self.chunks: list[tuple[float, np.ndarray]] = []
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        client.frame_listeners.append(self._keep)

    def _keep(self, track, frame) -> None:
        if track.participant == self.participant and track.media == "audio":
            now = time.monotonic()
            for mono in self._resampler.resample(frame):
                self.chunks.append((now, mono.to_ndarray().reshape(-1)))

    def arrival_of_tone(self, hz: float, after: float) -> float | None:
        kept = [(t, c) for t, c in self.chunks if t >= after]
        if not kept:
            return None
        samples = np.concatenate([c for _, c in kept])
        found = onset(samples, AUDIO_RATE, hz)
        if found is None:
            return None
        position = 0
        for arrived, chunk in kept:
            if position + len(chunk) > found:
                return arrived
            position += len(chunk)
        return None


async def one_call(
    folder: Path, uri: str, pin: str, bot: VisioClient, track: PcmAudioTrack, ear: Ear
) -> dict[str, float]:
    phone = Baresip(folder)
    await phone.start()
    tone_file = write_wav(
        folder / "tone.wav",
        np.concatenate(
            [
                np.zeros(PHONE_RATE // 2, np.int16),
                tone(BEEP_HZ, 0.3, 0.3)[:: AUDIO_RATE // PHONE_RATE],
                np.zeros(PHONE_RATE * 20, np.int16),
            ]
        ),
    )
    try:
        dialled = time.monotonic()
        await phone.dial(uri)
        await phone.wait_event("CALL_ESTABLISHED")
        answered = time.monotonic()
        await phone.wait_event("CALL_RTPESTAB")
        rtp_start = time.monotonic()
        await asyncio.sleep(0.5)
        await phone.keys(pin)
        pin_sent = time.monotonic()
        await phone.keys("#")
        await bot.wait_until(lambda: _phone_id(bot) is not None, timeout=30)
        seen = time.monotonic()
        ear.participant = _phone_id(bot)
        ear.chunks.clear()
        await asyncio.sleep(4.0)  # the "you are in" prompt is over

        switched = time.monotonic()
        await phone.speak(tone_file)
        await asyncio.sleep(2.0)
        heard_at = ear.arrival_of_tone(BEEP_HZ, after=switched)

        track.play(np.concatenate([tone(BOT_TONE_HZ, 0.3, 0.3), np.zeros(AUDIO_RATE, np.int16)]))
        played = time.monotonic()
        await asyncio.sleep(2.0)
        track.play(beeps(), loop=True)
        await phone.hang_up()
        await phone.wait_event("CALL_CLOSED")
        closed = time.monotonic()
        await asyncio.sleep(0.5)  # the recording is closed
    finally:
        await phone.stop()
    heard, rate = phone.heard()
    meeting_first = onset(heard, rate, BEEP_HZ, start=int((pin_sent - rtp_start) * rate))
    bot_tone = onset(heard, rate, BOT_TONE_HZ, start=int((played - rtp_start - 0.5) * rate))
    return {
        "answer_s": answered - dialled,
        "seen_s": seen - pin_sent,
        "clock_skew_ms": (closed - rtp_start - len(heard) / rate) * 1000,
        "join_s": (rtp_start + meeting_first / rate - pin_sent) if meeting_first else float("nan"),
        "call_s": (rtp_start + meeting_first / rate - dialled) if meeting_first else float("nan"),
        "phone_to_bot_ms": (heard_at - switched - 0.5) * 1000 if heard_at else float("nan"),
        "bot_to_phone_ms": (rtp_start + bot_tone / rate - played) * 1000
        if bot_tone
        else float("nan"),
    }


def _phone_id(client: VisioClient) -> str | None:
    for participant in client.participants.values():
        if participant["name"].startswith("Phone"):
            return participant["id"]
    return None


async def cpu_per_call(server, uri: str, pin: str, calls: int, window: float) -> dict[str, float]:
    process = _harness.server_process(server)
    janus = _harness.janus_process(server)

    async def sample() -> tuple[float, float]:
        first = (_harness.cpu_seconds(process), _harness.cpu_seconds(janus))
        await asyncio.sleep(window)
        last = (_harness.cpu_seconds(process), _harness.cpu_seconds(janus))
        return (last[0] - first[0]) / window * 100, (last[1] - first[1]) / window * 100

    idle_server, idle_janus = await sample()
    phones = [Baresip(Path(tempfile.mkdtemp(prefix="bench-sip-"))) for _ in range(calls)]
    for phone in phones:
        await phone.start()
        await phone.dial(uri)
        await phone.wait_event("CALL_ESTABLISHED")
        await asyncio.sleep(0.5)
        await phone.keys(pin + "#")
    await asyncio.sleep(8.0)  # joined, prompts over
    busy_server, busy_janus = await sample()
    for phone in phones:
        await phone.hang_up()
        await phone.stop()
    return {
        "server_idle_pct": idle_server,
        "server_per_call_pct": (busy_server - idle_server) / calls,
        "janus_per_call_pct": (busy_janus - idle_janus) / calls,
    }


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    server = _harness.start_server(
        guests_create_rooms=True,
        sip_enabled=True,
        sip_host=ADDRESS,
        sip_port=port,
        sip_rtp_ports="41000-41999",
        sip_pin_tries_per_hour=1000,
    )
    uri = f"sip:visio@{ADDRESS}:{port}"
    try:
        room = server.create_room()
        pin = server.get(f"/api/rooms/{room}")[1]["dial_in"]["pin"]
        bot = VisioClient(server.base_url, room, "Bot", video=False)
        await bot.connect()
        track = PcmAudioTrack(beeps(), loop=True)
        await bot.publish([track])
        ear = Ear(bot)
        results = []
        for index in range(args.calls):
            folder = Path(tempfile.mkdtemp(prefix=f"bench-sip-{index}-"))
            results.append(await one_call(folder, uri, pin, bot, track, ear))
            await bot.wait_until(lambda: _phone_id(bot) is None, timeout=10)
        cpu = await cpu_per_call(server, uri, pin, args.concurrent, args.window)
        await bot.leave()
    finally:
        server.stop()
    rows = []
    for key, label in (
        ("answer_s", "dial → answered (s)"),
        ("seen_s", "'#' → the bot sees the phone join (s)"),
        ("join_s", "'#' → first meeting sound heard (s)"),
        ("call_s", "dial → first meeting sound, PIN keyed by the bench (s)"),
        ("phone_to_bot_ms", "mouth-to-ear phone → bot (ms)"),
        ("bot_to_phone_ms", "mouth-to-ear bot → phone (ms)"),
        ("clock_skew_ms", "call length - recording length (ms)"),
    ):
        values = [r[key] for r in results if not np.isnan(r[key])]
        stats = _harness.summary(values) if values else {}
        rows.append([label, len(values), stats.get("median", "-"), stats.get("max", "-")])
    print(_harness.machine())
    print(_harness.table(["measure", "n", "median", "max"], rows, f"{args.calls} calls"))
    print(
        _harness.table(
            ["measure", "% of one core"],
            [[k, v] for k, v in cpu.items()],
            f"CPU, {args.concurrent} calls at once, {args.window:.0f} s window",
        )
    )
    _harness.print_logs(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5, help="calls measured one by one")
    parser.add_argument("--concurrent", type=int, default=3, help="calls at once for CPU")
    parser.add_argument("--window", type=float, default=15.0, help="CPU window, seconds")
    _harness.setup()
    asyncio.run(main(parser.parse_args()))
