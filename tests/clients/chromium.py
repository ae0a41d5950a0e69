"""Drive Debian's headless Chromium over the DevTools protocol (no webdriver, no browser download).

Only what the browser test needs: start Chromium with a fake microphone fed from a WAV file, open a page,
evaluate JavaScript (awaiting promises), and keep the page's console for failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
from pathlib import Path

import websockets

__all__ = ["CHROMIUM", "Chromium", "ChromiumError", "find_chromium"]

CHROMIUM = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


class ChromiumError(RuntimeError):
    """The browser failed to start, or a page script threw."""


class Chromium:
    """``async with Chromium(binary, profile_dir, fake_audio=wav) as browser: page = await browser.open(url)``."""

    def __init__(self, binary: str, profile_dir: Path, *, fake_audio: Path | None = None,
                 start_timeout_s: float = 30.0) -> None:
        self.binary = binary
        self.profile_dir = profile_dir
        self.fake_audio = fake_audio
        self.start_timeout_s = start_timeout_s
        self.console: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._ws = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    def flags(self) -> list[str]:
        flags = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--no-default-browser-check", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
            # WebRTC on loopback: allow 127.0.0.1 candidates, and plain IPs instead of mDNS .local names.
            "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--user-data-dir={self.profile_dir}", "--remote-debugging-port=0",
        ]
        if self.fake_audio is not None:
            flags.append(f"--use-file-for-fake-audio-capture={self.fake_audio}")
        return flags

    async def __aenter__(self) -> Chromium:
        self._process = await asyncio.create_subprocess_exec(
            self.binary, *self.flags(), "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            url = await asyncio.wait_for(self._devtools_url(), self.start_timeout_s)
        except (TimeoutError, ChromiumError):
            await self._stop_process()
            raise
        self._ws = await websockets.connect(url, max_size=None, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._call("Browser.close")
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        await self._stop_process()

    async def _devtools_url(self) -> str:
        lines = []
        while True:
            line = await self._process.stderr.readline()
            if not line:
                raise ChromiumError("chromium exited before DevTools was ready:\n" + "".join(lines[-20:]))
            text = line.decode(errors="replace")
            lines.append(text)
            match = re.search(r"DevTools listening on (ws://\S+)", text)
            if match:
                # Keep draining stderr so a chatty browser never blocks on a full pipe.
                asyncio.create_task(self._drain_stderr())  # noqa: RUF006 - ends with the process
                return match.group(1)

    async def _drain_stderr(self) -> None:
        while await self._process.stderr.readline():
            pass

    async def _stop_process(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    async def _read(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.console.append("exception: " + str(details.get("exception", {}).get("description", details)))

    async def _call(self, method: str, params: dict | None = None, session_id: str | None = None) -> dict:
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message = {"id": call_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        await self._ws.send(json.dumps(message))
        reply = await future
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def open(self, url: str) -> Page:
        target = await self._call("Target.createTarget", {"url": "about:blank"})
        attached = await self._call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.call("Runtime.enable")
        await page.call("Page.enable")
        await page.call("Page.navigate", {"url": url})
        return page


class Page:
    def __init__(self, browser: Chromium, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def call(self, method: str, params: dict | None = None) -> dict:
        return await self.browser._call(method, params, self.session_id)

    async def evaluate(self, expression: str, *, timeout_s: float = 30.0):
        """Evaluate ``expression`` in the page (awaiting a promise) and return its JSON value."""
        result = await asyncio.wait_for(self.call("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
        }), timeout_s)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"page script failed: {text}\nconsole:\n" + "\n".join(self.browser.console[-20:]))
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, timeout_s: float = 20.0, interval_s: float = 0.1):
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise ChromiumError(f"timed out waiting for {expression!r}\nconsole:\n"
                                    + "\n".join(self.browser.console[-20:]))
            await asyncio.sleep(interval_s)
