"""The download helper, against file:// URLs and servers on 127.0.0.1 only, and the guard
(tests/conftest.py) that fails any test trying to reach the network."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditml.data import download
from auditml.data.download import (
    DownloadError,
    PlainDownloadProgress,
    RemoteFile,
    RichDownloadProgress,
    download_file,
    download_progress,
    fetch_missing,
    md5_of_file,
)
from auditml.data.mnist import load_mnist
from auditml.errors import DataError

_CONTENT = bytes(range(256)) * 5000  # over 1 MiB, so the copy takes more than one chunk
_MD5 = hashlib.md5(_CONTENT).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "mirror" / "file.gz"
    path.parent.mkdir()
    path.write_bytes(_CONTENT)
    return path


def test_md5_of_file(source: Path) -> None:
    assert md5_of_file(source) == _MD5


def test_correct_md5_puts_file_in_place(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "nested" / "file.gz"
    result = download_file([source.as_uri()], destination, _MD5)
    assert result == destination
    assert destination.read_bytes() == _CONTENT
    assert [path.name for path in destination.parent.iterdir()] == ["file.gz"]


def test_upper_case_md5_accepted(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    download_file([source.as_uri()], destination, _MD5.upper())
    assert destination.is_file()


def test_wrong_md5_raises_and_leaves_nothing(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    with pytest.raises(DataError) as raised:
        download_file([source.as_uri()], destination, "0" * 32)
    message = str(raised.value)
    assert "\n" not in message
    assert "file.gz" in message
    assert str(destination.parent) in message
    assert f"MD5 {_MD5} does not match" in message
    assert list(destination.parent.iterdir()) == []


def test_wrong_md5_keeps_an_existing_file_untouched(tmp_path: Path, source: Path) -> None:
    destination = tmp_path / "data" / "file.gz"
    destination.parent.mkdir()
    destination.write_bytes(b"previous")
    with pytest.raises(DataError):
        download_file([source.as_uri()], destination, "0" * 32)
    assert destination.read_bytes() == b"previous"
    assert [path.name for path in destination.parent.iterdir()] == ["file.gz"]


def test_falls_back_to_later_mirrors(tmp_path: Path, source: Path) -> None:
    corrupt = tmp_path / "corrupt-mirror" / "file.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not the file")
    missing = tmp_path / "missing-mirror" / "file.gz"
    destination = tmp_path / "data" / "file.gz"
    download_file([missing.as_uri(), corrupt.as_uri(), source.as_uri()], destination, _MD5)
    assert destination.read_bytes() == _CONTENT


def test_all_mirrors_failing_lists_each_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing-mirror" / "file.gz"
    destination = tmp_path / "data" / "file.gz"
    with pytest.raises(DataError) as raised:
        download_file([missing.as_uri(), "ftp://example.invalid/file.gz"], destination, _MD5)
    message = str(raised.value)
    assert "\n" not in message
    assert missing.as_uri() in message
    assert "unsupported URL scheme 'ftp'" in message
    assert list(destination.parent.iterdir()) == []


def test_no_urls_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one URL"):
        download_file([], tmp_path / "file.gz", _MD5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_mirror(source: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``source``'s folder; stopped when the test ends."""
    handler = functools.partial(_QuietHandler, directory=str(source.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL on 127.0.0.1 whose server accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # the kernel completes connections in the backlog; nobody reads them
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/file.gz"
    finally:
        listener.close()


def _closed_port_url() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/file.gz"


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.advanced = 0

    def start(self, file_name: str, url: str, total_bytes: int | None) -> None:
        self.events.append(("start", file_name, url, str(total_bytes)))

    def advance(self, chunk_bytes: int) -> None:
        self.advanced += chunk_bytes

    def finish(self) -> None:
        self.events.append(("finish",))


def test_http_mirror_on_loopback_downloads_with_progress(
    tmp_path: Path, http_mirror: str
) -> None:
    destination = tmp_path / "data" / "file.gz"
    recorder = _Recorder()
    missing = http_mirror + "missing.gz"  # 404 first: the next mirror is tried
    download_file([missing, http_mirror + "file.gz"], destination, _MD5, progress=recorder)
    assert destination.read_bytes() == _CONTENT
    assert recorder.events == [
        ("start", "file.gz", http_mirror + "file.gz", str(len(_CONTENT))),
        ("finish",),
    ]
    assert recorder.advanced == len(_CONTENT)


def test_plain_progress_is_one_line_per_file_on_stderr(
    tmp_path: Path, http_mirror: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Under pytest stderr is not a terminal, so the default progress is the plain one.
    download_file([http_mirror + "file.gz"], tmp_path / "a" / "file.gz", _MD5)
    download_file([http_mirror + "file.gz"], tmp_path / "b" / "file.gz", _MD5)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"downloading file.gz (1.3 MB) from {http_mirror}file.gz",
        f"downloading file.gz (1.3 MB) from {http_mirror}file.gz",
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_rich_bar_on_a_terminal_and_plain_otherwise(
    tmp_path: Path, source: Path
) -> None:
    assert isinstance(download_progress(io.StringIO()), PlainDownloadProgress)
    terminal = _Terminal()
    progress = download_progress(terminal)
    assert isinstance(progress, RichDownloadProgress)
    download_file([source.as_uri()], tmp_path / "file.gz", _MD5, progress=progress)
    shown = terminal.getvalue()
    assert "downloading" in shown and "file.gz" in shown
    assert "1.3/1.3 MB" in shown  # rich's DownloadColumn at completion


def test_silent_server_times_out_instead_of_hanging(tmp_path: Path, silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError) as raised:
        download_file([silent_server], tmp_path / "file.gz", _MD5, timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert "timed out" in str(raised.value)
    assert list(tmp_path.glob(".file.gz.*")) == []


def test_loaders_use_the_module_timeout(
    tmp_path: Path, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loaders pass no timeout: the module's default must bound them (read when called).
    monkeypatch.setattr(download, "DEFAULT_TIMEOUT_S", 0.5)
    started = time.monotonic()
    with pytest.raises(DataError, match="timed out"):
        fetch_missing(
            "toy", [RemoteFile("file.gz", (silent_server,), _MD5)], tmp_path / "toy",
            download=True, wanted="file.gz",
        )
    assert time.monotonic() - started < 10


def test_unreachable_mirror_error_says_which_file_where_and_what_to_do(tmp_path: Path) -> None:
    url = _closed_port_url()
    target = tmp_path / "toy"
    files = [RemoteFile(name, (url,), _MD5) for name in ("a.gz", "b.gz")]
    with pytest.raises(DataError) as raised:
        fetch_missing("toy", files, target, download=True, wanted="a.gz, b.gz")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"toy: could not download a.gz ({url}: ")
    assert "refused" in message
    assert message.endswith(f"; check the network, or put a.gz, b.gz in {target} by hand")
    # The first failure stops the fetch: b.gz is not tried against the dead mirror too.
    assert list(target.iterdir()) == []


def test_download_false_forbids_fetching(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "toy"
    with pytest.raises(DataError) as raised:
        fetch_missing(
            "toy", [RemoteFile("file.gz", (source.as_uri(),), _MD5)], target,
            download=False, wanted="file.gz", searched=[tmp_path / "elsewhere"],
        )
    assert str(raised.value) == (
        "toy: files not found and downloads are disabled by `data.download: false`; "
        f"put file.gz in {target} (also searched: {tmp_path / 'elsewhere'}), "
        "or set `data.download: true` to fetch them"
    )
    assert not target.exists()


def test_long_server_reasons_are_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def chatty(url: str, timeout: float) -> Any:
        raise OSError("x" * 10_000)

    monkeypatch.setattr(download.urllib.request, "urlopen", chatty)
    with pytest.raises(DownloadError) as raised:
        download_file(["http://127.0.0.1/file.gz"], tmp_path / "file.gz", _MD5)
    assert len(str(raised.value)) < 400


def test_network_guard_blocks_connections_and_lookups(network_guard: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)  # without the guard this must not hang the suite
        with pytest.raises(network_guard.error, match=re.escape("192.0.2.1")):
            sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    with pytest.raises(network_guard.error, match=re.escape("example.com")):
        socket.getaddrinfo("example.com", 443)
    assert len(network_guard.attempts) == 2
    network_guard.attempts.clear()  # seen: the test itself must not fail at teardown


def test_a_test_that_would_download_fails_instead(tmp_path: Path, network_guard: Any) -> None:
    # The real MNIST mirrors: the guard's error is not an OSError, so it is not turned into a
    # quiet "could not download" DataError that a test could mistake for the expected failure.
    with pytest.raises(network_guard.error):
        load_mnist(tmp_path, download=True)
    assert network_guard.attempts
    network_guard.attempts.clear()


def test_a_swallowed_attempt_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import urllib.request

        def test_swallows_the_error():
            try:
                urllib.request.urlopen("https://example.com/", timeout=1)
            except BaseException:
                pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test tried to reach the network: name lookup of 'example.com'*"])
