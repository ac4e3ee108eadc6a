"""Shared fixtures: small configs on the embedded digits data, written to tmp dirs, and a guard
that fails any test trying to reach the network."""

from __future__ import annotations

import copy
import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

# pytester runs small test files in-process: tests/data/test_download.py uses it to show that the
# network guard fails a test even when the code under test swallows the guard's error.
pytest_plugins = ("pytester",)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch and one BLAS thread for a module of tiny models: more threads only add
    overhead, and stall badly when another process holds a core."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """A factory of small, fast digits configs (as raw mappings) with nested overrides."""

    def make(**overrides: Any) -> dict[str, Any]:
        base = {
            "experiment_name": "tiny",
            "output_dir": str(tmp_path / "results"),
            "data": {"dataset": "digits", "train_size": 100, "batch_size": 50},
            "training": {"epochs": 2, "learning_rate": 0.005, "device": "cpu"},
        }
        return _merge(base, overrides)

    return make


@pytest.fixture(autouse=True, scope="session")
def grad_sample_mode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``grad_sample_mode: auto`` caches what it measures in this session's file, never in the
    user's cache (subprocesses inherit the variable); one measurement per set-up per session."""
    path = tmp_path_factory.mktemp("cache") / "grad_sample_modes.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDITML_GRAD_SAMPLE_MODE_CACHE", str(path))
        yield path


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a raw config mapping to ``tmp_path/<name>.yaml`` and return the path."""

    def write(raw: dict[str, Any], name: str = "config") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    return write


class NetworkAccessBlocked(RuntimeError):
    """A test tried to reach a host other than this machine.

    Deliberately not an ``OSError``: the downloader turns OSErrors into "could not download"
    errors, which a test expecting a download failure would accept without noticing the attempt.
    """


@dataclass
class NetworkGuard:
    """What the autouse guard blocked in the current test; it fails the test unless cleared."""

    attempts: list[str] = field(default_factory=list)
    error: type[RuntimeError] = NetworkAccessBlocked

    def block(self, what: str) -> NoReturn:
        self.attempts.append(what)
        raise NetworkAccessBlocked(f"test tried to reach the network ({what}); use a file:// or "
                                   "127.0.0.1 mirror instead")


def _is_loopback_host(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        # An IPv6 address may carry a zone ("fe80::1%eth0").
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Make every test fail that tries to reach a host other than 127.0.0.1/::1/localhost.

    Connections (TCP connect, UDP sendto) to any other address, and name lookups of any other
    host (a DNS query is itself network traffic), raise ``NetworkAccessBlocked``; the attempt is
    also recorded and fails the test at teardown, in case the code under test swallowed the
    error. Unix sockets and loopback servers (tests' own http.server) keep working.
    """
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) and address else address
            if not _is_loopback_host(host):
                guard.block(f"connect to {address!r}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
        check(sock, args[-1])
        return real_sendto(sock, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "") and not _is_loopback_host(name) and not _is_ip_literal(name):
            guard.block(f"name lookup of {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.attempts:
        pytest.fail(f"test tried to reach the network: {'; '.join(guard.attempts)}", pytrace=False)
