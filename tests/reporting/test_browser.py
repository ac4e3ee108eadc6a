"""The HTML reports in a real browser: headless Chromium, driven over the DevTools protocol.

Checks, for a run report and a comparison report: the page does not scroll sideways at 1280 px
(nor at a phone's 390 px), every figure is drawn (``<img>`` decoded with a non-zero width, inline
``<svg>`` with a non-zero size), and the console shows no error (a failed load or script error
would). A full-page screenshot of each report at 1280 px is kept as a test artefact in
``test-artifacts/`` at the repository root (git-ignored), for a person to look at.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it); where it is missing the
tests skip and say so. The browser is started with ``--remote-debugging-pipe``: the protocol
runs over two inherited file descriptors, so no port is opened and no driver is needed, and
host resolution is mapped to nothing, so the page cannot reach the network.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditml.reporting import compare_runs, write_run_report

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 60.0
DESKTOP, PHONE = 1280, 390

# What the page says about itself, measured after load.
_MEASURE = """JSON.stringify({
  innerWidth: window.innerWidth,
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  tables: [...document.querySelectorAll('.table-box')].map(b => b.scrollWidth - b.clientWidth),
  images: [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth})),
  svgs: [...document.querySelectorAll('figure svg')].map(s => {
    const r = s.getBoundingClientRect(); return {width: r.width, height: r.height};
  }),
})"""


def _browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Chromium:
    """Headless Chromium and one page, spoken to over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="auditml-chromium-")
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        def on_fds_3_and_4() -> None:
            # The protocol reads fd 3 and writes fd 4 in the browser. Copy both ends above 9
            # first, so that one already at 3 or 4 is not overwritten by the other.
            reading = fcntl.fcntl(to_browser, fcntl.F_DUPFD, 10)
            writing = fcntl.fcntl(from_browser, fcntl.F_DUPFD, 10)
            os.dup2(reading, 3)
            os.dup2(writing, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", f"--user-data-dir={self._profile}", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={DESKTOP},900",
             "about:blank"],
            # Python's own descriptors are not inheritable (PEP 446): only 3 and 4 pass.
            preexec_fn=on_fds_3_and_4,
            close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._read], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self.events.append(message)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call(method, params, self._session)

    def wait_for(self, event: str) -> None:
        if any(message["method"] == event for message in self.events):
            return
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return

    def open(self, path: Path, width: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        self.events.clear()
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def measure(self) -> dict[str, Any]:
        result = self.call("Runtime.evaluate", {"expression": _MEASURE, "returnByValue": True})
        return json.loads(result["result"]["value"])

    def console_errors(self) -> list[str]:
        errors = []
        for message in self.events:
            params = message.get("params", {})
            if message["method"] == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif message["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif message["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    def screenshot(self, path: Path) -> None:
        result = self.call("Page.captureScreenshot",
                           {"format": "png", "captureBeyondViewport": True})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))

    def close(self) -> None:
        # The browser may already be gone; closing it is best effort, the wait below is not.
        with contextlib.suppress(OSError, TimeoutError, ConnectionError, RuntimeError):
            self._call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._read)
        os.close(self._write)
        shutil.rmtree(self._profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    executable = _browser()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: `apt-get install chromium`, as .ci/run "
                    "does); the browser checks of the HTML reports were skipped")
    chromium = Chromium(executable)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def reports(
    tmp_path: Path,
    make_run: Callable[..., Path],
    add_audit: Callable[..., None],
    add_canary_audit: Callable[..., None],
) -> dict[str, Path]:
    """A run report (three attacks, a gallery, a canary audit) and a three-run comparison."""
    runs = tmp_path / "results"
    baseline = make_run(runs, "baseline", val_acc=0.988, shift=1.5)
    add_audit(baseline, "mia_lira", 2.5, gallery=True)
    add_audit(baseline, "mia_rmia", 2.0)
    add_canary_audit(baseline, 1.2)
    private = make_run(runs, "eps5", dp=True, epsilon=4.87, target_epsilon=5.0, delta=2e-4,
                       val_acc=0.93, shift=0.2)
    broken = make_run(runs, "a_run_with_a_rather_long_experiment_name_eps0.1", dp=True,
                      epsilon=0.1, target_epsilon=0.1, delta=1e-5, val_acc=0.91, shift=1.2)
    run_report = write_run_report(baseline, tmp_path / "run_report")
    comparison = compare_runs([baseline, private, broken], tmp_path / "comparison")
    return {"run": run_report.report_html, "comparison": comparison.report_html}


@pytest.mark.parametrize("which", ["run", "comparison"])
def test_report_renders_in_chromium(
    browser: Chromium, reports: dict[str, Path], which: str
) -> None:
    browser.open(reports[which], DESKTOP)
    page = browser.measure()
    browser.screenshot(ARTIFACTS / f"{which}_report_{DESKTOP}px.png")
    assert page["innerWidth"] == DESKTOP  # the window; clientWidth is that less the scrollbar
    assert page["scrollWidth"] <= page["clientWidth"], f"{which} report scrolls sideways"
    # Not only the page: no table hides columns in a scrolling box either.
    assert page["tables"] and max(page["tables"]) <= 0, f"a table is cut: {page['tables']}"
    assert page["svgs"], "no inline SVG figure"
    assert all(svg["width"] > 0 and svg["height"] > 0 for svg in page["svgs"])
    assert all(image["complete"] and image["width"] > 0 for image in page["images"])
    if which == "run":
        assert len(page["images"]) == 1  # the exposed-examples gallery
    assert browser.console_errors() == []


@pytest.mark.parametrize("which", ["run", "comparison"])
def test_report_fits_a_phone_screen(
    browser: Chromium, reports: dict[str, Path], which: str
) -> None:
    browser.open(reports[which], PHONE)
    page = browser.measure()
    assert page["scrollWidth"] <= page["clientWidth"], f"{which} report scrolls sideways"
    assert max(page["tables"]) <= 0, f"a table is cut: {page['tables']}"
    assert browser.console_errors() == []
