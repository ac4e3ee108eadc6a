"""Fetching dataset files: mirrors tried in order, MD5-checked, moved into place atomically.

A file appears at its destination only once it is complete and its checksum matches, so a file
that is present is always whole: an interrupted or corrupted download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from auditml.errors import DataError

# Large enough that Python overhead per chunk is negligible, small enough to keep memory flat.
_CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 60.0
# file:// is accepted so that mirrors can be local copies (and so tests need no network).
_ALLOWED_SCHEMES = frozenset({"http", "https", "file"})


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
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download the first of ``urls`` that answers with content whose MD5 is ``md5``.

    The content is streamed to a temporary file beside ``destination`` (same file system, so the
    final ``os.replace`` is atomic) and hashed on the way. Returns ``destination``. Raises
    ``DataError`` naming every URL tried and why it failed when none succeeds.
    """
    if not urls:
        raise ValueError("download_file needs at least one URL")
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
        reason = _try_url(url, destination, md5.lower(), timeout_s)
        if reason is None:
            return destination
        failures.append(f"{url}: {reason}")
    raise DataError(
        f"could not download {destination.name} to {destination.parent} "
        f"({'; '.join(failures)}); check the network or place the file there by hand"
    )


def _try_url(url: str, destination: Path, md5: str, timeout_s: float) -> str | None:
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
                for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                    digest.update(chunk)
                    sink.write(chunk)
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


def _one_line(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())
