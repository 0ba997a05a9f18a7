"""Headless Chromium for the docs pages' tests: offline, in a network namespace of its own, driven over its
DevTools pipe so that a test waits in real time for the player to draw (a virtual time budget can run out
while the player's WebAssembly is still compiling on a loaded machine)."""

import json
import os
import re
import subprocess
import time
from html import unescape as html_unescape
from pathlib import Path

#: Debian's /usr/bin/chromium is a wrapper that turns on extension updates; the browser itself is here.
CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=NetworkTimeServiceQuerying", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr", "--v=1", "--window-size=1280,900",
]  # fmt: skip
#: What a screenshot waits for: virtual time, as nothing can be asked of the page.
SCREENSHOT_BUDGET = "--virtual-time-budget=3000"


def chromium(profile: Path, *args: str) -> list[str]:
    """The command for Chromium with `profile`, offline: in a network namespace of its own (loopback only,
    down), whatever it tries, nothing leaves."""
    return ["unshare", "--net", CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]


def terminal_text(dom: str) -> str:
    """The text the player's terminal shows in a DOM ('' where it drew none)."""
    terminal = re.search(r'<pre class="ap-term-text[^>]*>(.*?)</pre>', dom, re.S)
    return html_unescape(re.sub(r"<[^>]+>", "", terminal.group(1))) if terminal else ""


def page_console(stderr: str) -> list[str]:
    """The page's own console messages: Chromium logs those of its own pages too (`source: chrome://…`)."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line and "source: chrome://" not in line]


#: The page as it is now ('' before it has a document).
OUTER_HTML = "document.documentElement ? document.documentElement.outerHTML : ''"


class _Pipe:
    """Chromium's DevTools pipe: NUL-ended JSON messages, commands answered by id."""

    def __init__(self, commands: int, answers: int) -> None:
        self.commands, self.answers, self.buffer, self.last = commands, answers, b"", 0

    def call(self, method: str, session: str | None = None, **params: object) -> dict:
        self.last += 1
        message = {"id": self.last, "method": method, "params": params} | ({"sessionId": session} if session else {})
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.answers, 65536)
                if not chunk:
                    raise RuntimeError(f"Chromium closed its DevTools pipe before answering {method}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("id") == self.last:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]


def page_dom(profile: Path, url: str, shows: str, seconds: float = 60) -> subprocess.CompletedProcess:
    """The DOM of `url` (as stdout; Chromium's log as stderr) once the player's terminal shows `shows`, or
    after `seconds` without it."""
    to_chromium, commands = os.pipe()
    answers, from_chromium = os.pipe()

    def on_fds_3_and_4() -> None:  # by way of fresh numbers, as either end may be 3 or 4 already
        reads, writes = os.dup(to_chromium), os.dup(from_chromium)
        os.dup2(reads, 3)
        os.dup2(writes, 4)

    log = profile.parent / f"{profile.name}.log"
    profile.mkdir(parents=True, exist_ok=True)
    with log.open("w") as stderr:
        browser = subprocess.Popen(
            chromium(profile, "--remote-debugging-pipe", url),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=on_fds_3_and_4, close_fds=False,
        )  # fmt: skip
    os.close(to_chromium)
    os.close(from_chromium)
    try:
        pipe = _Pipe(commands, answers)
        deadline = time.monotonic() + seconds
        while not (pages := [t for t in pipe.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]):
            assert time.monotonic() < deadline, "Chromium opened no page"
            time.sleep(0.1)
        session = pipe.call("Target.attachToTarget", targetId=pages[0]["targetId"], flatten=True)["sessionId"]
        while True:
            dom = pipe.call("Runtime.evaluate", session, expression=OUTER_HTML, returnByValue=True)["result"].get("value", "")
            if shows in terminal_text(dom) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        pipe.call("Browser.close")
        returncode = browser.wait(timeout=30)
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait()
        os.close(commands)
        os.close(answers)
    return subprocess.CompletedProcess(browser.args, returncode, dom, log.read_text())
