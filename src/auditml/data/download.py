"""Fetching dataset files: mirrors tried in order, MD5-checked, moved into place atomically.

A file appears at its destination only once it is complete and its checksum matches, so a file
that is present is always whole: an interrupted or corrupted download leaves nothing behind.
Progress goes to stderr: a rich bar on a terminal, one plain line per file otherwise (a log).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from auditml.errors import DataError

# Small enough for a smooth progress bar, large enough that Python overhead per chunk is negligible.
_CHUNK_BYTES = 1 << 18
# Bounds each connect and each read, not the whole transfer: a slow but live link may take as long
# as it needs, while a dead or black-holed one gives up after (mirrors x this) per file.
DEFAULT_TIMEOUT_S = 30.0
# file:// is accepted so that mirrors can be local copies (and so tests need no network).
_ALLOWED_SCHEMES = frozenset({"http", "https", "file"})
# A server's error text is quoted, never more: a reason is one short clause of a one-line error.
_MAX_REASON_CHARS = 200


class DownloadProgress(Protocol):
    """Told about one transfer at a time: ``start``, any number of ``advance``, then ``finish``."""

    def start(self, file_name: str, url: str, total_bytes: int | None) -> None: ...

    def advance(self, chunk_bytes: int) -> None: ...

    def finish(self) -> None: ...


class PlainDownloadProgress:
    """One line per transfer, written when it starts: readable in a log file or CI output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def start(self, file_name: str, url: str, total_bytes: int | None) -> None:
        size = "" if total_bytes is None else f" ({_readable_size(total_bytes)})"
        print(f"downloading {file_name}{size} from {url}", file=self.stream, flush=True)

    def advance(self, chunk_bytes: int) -> None:
        pass

    def finish(self) -> None:
        pass


class RichDownloadProgress:
    """A bar per transfer with size, speed and time left, for a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: int | None = None

    def start(self, file_name: str, url: str, total_bytes: int | None) -> None:
        self.finish()
        self._progress = Progress(
            TextColumn("downloading [bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._progress.start()
        self._task = self._progress.add_task(file_name, total=total_bytes)

    def advance(self, chunk_bytes: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=chunk_bytes)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None


def download_progress(stream: TextIO | None = None) -> DownloadProgress:
    """A rich bar if ``stream`` (default: stderr, as it is now) is a terminal, else plain lines."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return RichDownloadProgress(Console(file=stream))
    return PlainDownloadProgress(stream)


class DownloadError(DataError):
    """No mirror delivered the file; ``failures`` holds one ``url: reason`` entry per URL tried."""

    def __init__(self, file_name: str, directory: Path, failures: Sequence[str]) -> None:
        self.file_name = file_name
        self.directory = directory
        self.failures = tuple(failures)
        super().__init__(
            f"could not download {file_name} to {directory} ({self.failures_text}); "
            "check the network or place the file there by hand"
        )

    @property
    def failures_text(self) -> str:
        return "; ".join(self.failures)


@dataclass(frozen=True)
class RemoteFile:
    """A file a dataset needs: its name, the mirrors' URLs in order, and its published MD5."""

    name: str
    urls: tuple[str, ...]
    md5: str


def fetch_missing(
    dataset: str,
    files: Sequence[RemoteFile],
    target: Path,
    *,
    download: bool,
    wanted: str,
    searched: Sequence[Path] = (),
    progress: DownloadProgress | None = None,
) -> None:
    """Download ``files`` into ``target``, or say in one line why not and what to do instead.

    ``wanted`` says what a user may put in ``target`` by hand (named in both errors);
    ``searched`` lists the other folders the loader already looked in. With ``download`` false
    nothing is fetched: the error says so, and that ``data.download`` is what forbids it.
    """
    if not download:
        also = f" (also searched: {', '.join(map(str, searched))})" if searched else ""
        raise DataError(
            f"{dataset}: files not found and downloads are disabled by `data.download: false`; "
            f"put {wanted} in {target}{also}, or set `data.download: true` to fetch them"
        )
    for remote in files:
        try:
            download_file(remote.urls, target / remote.name, remote.md5, progress=progress)
        except DownloadError as err:
            raise DataError(
                f"{dataset}: could not download {remote.name} ({err.failures_text}); "
                f"check the network, or put {wanted} in {target} by hand"
            ) from err


def md5_of_file(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    urls: Sequence[str],
    destination: Path,
    md5: str,
    *,
    timeout_s: float | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """Download the first of ``urls`` that answers with content whose MD5 is ``md5``.

    The content is streamed to a temporary file beside ``destination`` (same file system, so the
    final ``os.replace`` is atomic) and hashed on the way. ``timeout_s`` (default
    ``DEFAULT_TIMEOUT_S``) bounds each connect and read; ``progress`` defaults to
    ``download_progress()``. Returns ``destination``. Raises ``DownloadError`` naming every URL
    tried and why it failed when none succeeds.
    """
    if not urls:
        raise ValueError("download_file needs at least one URL")
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    progress = download_progress() if progress is None else progress
    destination = Path(destination)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"cannot create directory {destination.parent} for {destination.name}: "
            f"{_one_line(err)}; check its permissions or choose another data directory"
        ) from err
    failures: list[str] = []
    for url in urls:
        reason = _try_url(url, destination, md5.lower(), timeout_s, progress)
        if reason is None:
            return destination
        failures.append(f"{url}: {reason}")
    raise DownloadError(destination.name, destination.parent, failures)


def _try_url(
    url: str, destination: Path, md5: str, timeout_s: float, progress: DownloadProgress
) -> str | None:
    """Fetch one URL into place; return None on success or a one-line reason on failure."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        return f"unsupported URL scheme {scheme!r}"
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
    )
    temporary = Path(temporary_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(handle, "wb") as sink:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                progress.start(destination.name, url, _content_length(response))
                try:
                    for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                        digest.update(chunk)
                        sink.write(chunk)
                        progress.advance(len(chunk))
                finally:
                    progress.finish()
            sink.flush()
            # Without fsync a crash right after the rename could leave an empty "complete" file.
            os.fsync(sink.fileno())
        actual = digest.hexdigest()
        if actual != md5:
            return f"MD5 {actual} does not match the expected {md5}"
        os.replace(temporary, destination)
        return None
    # URLError and timeouts are OSErrors; a dropped connection mid-body is an HTTPException;
    # a malformed URL is a ValueError.
    except (OSError, ValueError, http.client.HTTPException) as err:
        return _one_line(err)
    finally:
        temporary.unlink(missing_ok=True)


def _content_length(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _readable_size(size_bytes: int) -> str:
    if size_bytes < 1_000_000:
        return f"{size_bytes / 1e3:.1f} kB"
    return f"{size_bytes / 1e6:.1f} MB"


def _one_line(err: BaseException) -> str:
    text = " ".join((str(err) or type(err).__name__).split())
    if len(text) > _MAX_REASON_CHARS:
        return text[: _MAX_REASON_CHARS - 1] + "…"
    return text
