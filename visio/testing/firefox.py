"""Debian's Firefox ESR for tests and benchmarks, driven over WebDriver BiDi.

Playwright cannot drive Debian's Firefox, so `tests/firefox/driver.mjs` does, with
puppeteer-core (installed from npm by test.sh, never a downloaded browser), and this
module speaks to it: one JSON request a line on its stdin, one reply a line on its stdout.
Firefox has a fake camera and microphone and asks no permission.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DRIVER_DIR = Path(__file__).resolve().parents[2] / "tests" / "firefox"
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"


class FirefoxError(RuntimeError):
    pass


class Firefox:
    """One headless Firefox; `new_page()` opens a tab with cookies of its own."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)  # e.g. a side namespace's command(): it runs in there
        self.process: asyncio.subprocess.Process | None = None
        self.version = ""
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> None:
        node = shutil.which("node")
        if node is None or not (DRIVER_DIR / "node_modules").is_dir():
            raise FirefoxError(
                "Firefox tests need node and `npm ci --prefix tests/firefox` (test.sh)"
            )
        self.process = await asyncio.create_subprocess_exec(
            *self.prefix,
            node,
            str(DRIVER_DIR / "driver.mjs"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "FIREFOX": FIREFOX, "PUPPETEER_SKIP_DOWNLOAD": "1"},
            limit=16 * 1024 * 1024,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise FirefoxError(f"the Firefox driver exited ({await self.process.wait()})")
        self.version = json.loads(line)["ready"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            future = self._waiting.pop(message["id"], None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(FirefoxError(message["error"]))
            else:
                future.set_result(message["result"])
        for future in self._waiting.values():
            future.set_exception(FirefoxError("the Firefox driver exited"))

    async def call(self, method: str, **params: Any) -> Any:
        assert self.process is not None and self.process.stdin is not None
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        request = {"id": request_id, "method": method, "params": params}
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        return await future

    async def new_page(self) -> FirefoxPage:
        return FirefoxPage(self, await self.call("newPage"))

    async def close(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.write(b'{"method": "close"}\n')
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.terminate()  # puppeteer closes Firefox on SIGTERM
            await self.process.wait()
        if self._reader is not None:
            await self._reader


class FirefoxPage:
    def __init__(self, firefox: Firefox, page_id: int) -> None:
        self.firefox = firefox
        self.id = page_id

    async def close(self) -> None:
        await self.firefox.call("closePage", page=self.id)

    async def goto(self, url: str) -> None:
        await self.firefox.call("goto", page=self.id, url=url)

    async def evaluate(self, function: str, arg: Any = None) -> Any:
        """Runs a JavaScript function (its source) on one JSON argument, awaits its result."""
        return await self.firefox.call("evaluate", page=self.id, fn=function, arg=arg)

    async def click(self, selector: str) -> None:
        await self.firefox.call("click", page=self.id, selector=selector)

    async def type(self, selector: str, text: str) -> None:
        """Replaces an input's text, typed key by key."""
        await self.firefox.call("type", page=self.id, selector=selector, text=text)

    async def set_viewport(self, width: int, height: int) -> None:
        await self.firefox.call("setViewport", page=self.id, width=width, height=height)

    async def errors(self) -> list[str]:
        """The page's uncaught errors so far."""
        return list(await self.firefox.call("errors", page=self.id))

    async def wait_for(
        self, function: str, arg: Any = None, timeout: float = 20.0, interval: float = 0.25
    ) -> Any:
        """Polls a function until it returns something truthy, and returns that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await self.evaluate(function, arg)
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"still {result!r} after {timeout} s: {function}")
            await asyncio.sleep(interval)
