"""Headless Chromium over the DevTools protocol, for the report's tests
and `make report`'s screenshot.

Chromium is Debian's package (/usr/bin/chromium; .ci/run installs it). It
talks to us over a pipe (--remote-debugging-pipe: JSON messages ended by
NUL on fds 3 and 4), so no port is opened and no Python package is needed.
Every wait is bounded: a browser that does not answer fails the caller
with a message instead of hanging.

usage: python headless.py screenshot PAGE.html OUT.png [WIDTH]
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CHROMIUM = os.environ.get("ECORECO_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


class BrowserError(RuntimeError):
    pass


def find_chromium():
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        raise BrowserError(
            f"chromium not found at {CHROMIUM}: install Debian's chromium package "
            "(apt-get install chromium; .ci/run does) or set ECORECO_CHROMIUM"
        )
    return path


class Browser:
    """One headless Chromium; use as a context manager."""

    def __init__(self, timeout=30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="ecoreco-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire():  # in the child, before exec: fds 3 and 4 are the pipe
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [find_chromium(), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=wire,
            pass_fds=(3, 4),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._messages = queue.Queue()
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self):
        self.stderr_tail = b""
        for line in self.proc.stderr:
            self.stderr_tail = (self.stderr_tail + line)[-4000:]

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                self._messages.put(None)
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(raw))

    def send(self, method, params=None, session=None):
        """Sends one command and waits (bounded) for its answer."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._get(deadline, method)
            if m.get("id") == self._next_id:
                if "error" in m:
                    raise BrowserError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def _get(self, deadline, waiting_for):
        left = deadline - time.monotonic()
        try:
            m = self._messages.get(timeout=max(left, 0.01))
        except queue.Empty:
            raise BrowserError(f"chromium did not answer {waiting_for} within {self.timeout:.0f} s") from None
        if m is None:
            raise BrowserError(
                f"chromium exited while waiting for {waiting_for}: {getattr(self, 'stderr_tail', b'').decode(errors='replace')[-800:]}"
            )
        return m

    def wait_event(self, method, session=None):
        for i, m in enumerate(self.events):
            if m.get("method") == method and (session is None or m.get("sessionId") == session):
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._get(deadline, method)
            if m.get("method") == method and (session is None or m.get("sessionId") == session):
                return m
            self.events.append(m)

    def open(self, url, width=900, height=1200):
        """A new tab showing `url`, with console, log and network recorded;
        returns its session id once the page has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events = [e for e in self.events if e.get("sessionId") != session]
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired", session)
        return session

    def evaluate(self, session, expression):
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self, session):
        """Console errors, uncaught exceptions and error log entries
        (a Content-Security-Policy violation logs one)."""
        errors = []
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            p = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(p)
            elif e.get("method") == "Runtime.exceptionThrown":
                errors.append(p)
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(p["entry"])
        return errors

    def requests(self, session):
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("sessionId") == session and e.get("method") == "Network.requestWillBeSent"
        ]

    def screenshot(self, session, path, width=900):
        height = int(self.evaluate(session, "document.documentElement.scrollHeight"))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        import base64

        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return height

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                except BrowserError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            os.close(self._to_chrome)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if len(argv) < 4 or argv[1] != "screenshot":
        sys.exit(__doc__)
    page, out = os.path.abspath(argv[2]), argv[3]
    width = int(argv[4]) if len(argv) > 4 else 900
    with Browser() as b:
        session = b.open("file://" + page, width=width)
        errors = b.console_errors(session)
        height = b.screenshot(session, out, width)
        outside = [u for u in b.requests(session) if u != "file://" + page]
    print(f"{out}: {width} x {height} px screenshot of {page}")
    if errors or outside:
        sys.exit(f"the page logged errors {errors} or made requests {outside}")


if __name__ == "__main__":
    main(sys.argv)
