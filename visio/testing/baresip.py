"""A SIP phone for tests: baresip (Debian), driven over its ctrl_tcp socket.

It speaks what its audio source file holds (G.711, so 8 kHz mono WAV files; `speak`
switches the file mid-call) and its `sndfile` module writes what it hears to
`dump-…-dec.wav` in its folder. It binds the test veth's address, as phones would be
elsewhere on the network.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from visio.testing.netns import ADDRESS, VETH
from visio.testing.process import open_log, stop_process
from visio.testing.server import free_port

PHONE_RATE = 8000  # G.711: baresip's aufile wants the codec's rate
PCM_8K = ["-ar", str(PHONE_RATE), "-ac", "1", "-f", "s16le", "-"]

CONFIG = """\
module_path /usr/lib/baresip/modules
sip_listen {address}:{sip_port}
audio_source aufile,{source}
audio_player aubridge,nil
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module ctrl_tcp.so
module_app account.so
module_app menu.so
snd_path {folder}
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""


def write_wav(path: Path, samples: np.ndarray, rate: int = PHONE_RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype(np.int16).tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), np.int16).copy(), wav.getframerate()


def to_phone_rate(path: Path, seconds_after: float = 30.0) -> np.ndarray:
    """A sound file as 8 kHz mono samples, then silence (baresip ends the call at the end
    of its source file)."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), *PCM_8K],
        check=True,
        capture_output=True,
    )
    speech = np.frombuffer(result.stdout, dtype=np.int16)
    return np.concatenate([speech, np.zeros(int(PHONE_RATE * seconds_after), np.int16)])


class Baresip:
    def __init__(self, folder: Path, user: str = "0612345642") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.ctrl_port = free_port()
        self.sip_port = free_port()
        silence = np.zeros(PHONE_RATE * 300, np.int16)
        self.silence = write_wav(folder / "silence.wav", silence)
        (folder / "config").write_text(
            CONFIG.format(
                address=ADDRESS,
                sip_port=self.sip_port,
                source=self.silence,
                folder=folder,
                ctrl_port=self.ctrl_port,
            )
        )
        (folder / "accounts").write_text(f"<sip:{user}@{ADDRESS}>;regint=0\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._responses: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.log_path = folder / "baresip.log"

    async def start(self) -> None:
        log = open_log(self.log_path)
        self.process = subprocess.Popen(  # noqa: ASYNC220 (a daemon, not awaited)
            ["baresip", "-n", VETH, "-f", str(self.folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"baresip did not start:\n{self.log()}") from None
                await asyncio.sleep(0.1)
        self._task = asyncio.create_task(self._read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
        stop_process(self.process, timeout=5)

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            length = await self._reader.readuntil(b":")
            body = await self._reader.readexactly(int(length[:-1]) + 1)
            message = json.loads(body[:-1])
            if message.get("event"):
                self.events.append(message)
            elif message.get("response"):
                self._responses.put_nowait(message)

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        response = await asyncio.wait_for(self._responses.get(), 5)
        if not response.get("ok"):
            raise RuntimeError(f"baresip {command} {params}: {response.get('data')}")
        return response

    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def keys(self, digits: str, gap: float = 0.25) -> None:
        """DTMF, sent as RFC 4733 telephone-events."""
        for digit in digits:
            await self.command("sndcode", digit)
            await asyncio.sleep(gap)

    async def speak(self, path: Path) -> None:
        """From now on, say this WAV file (8 kHz mono)."""
        await self.command("ausrc", f"aufile,{path}")

    async def hang_up(self) -> None:
        await self.command("hangup")

    def event_types(self) -> list[str]:
        return [event.get("type", "") for event in self.events]

    async def wait_event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("type") == kind:
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"baresip: no {kind} in {self.event_types()}\n{self.log()}")
            await asyncio.sleep(0.05)

    def heard(self) -> tuple[np.ndarray, int]:
        """What it heard on its last call (the file is complete once the call ended)."""
        dumps = sorted(self.folder.glob("dump-*-dec.wav"))
        if not dumps:
            return np.zeros(0, np.int16), PHONE_RATE
        return read_wav(dumps[-1])
