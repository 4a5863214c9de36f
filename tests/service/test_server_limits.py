"""The limits of the real server process (``techmatch-serve``): a URL far past the app's limit is
answered 414 by the app, not cut off by the HTTP parser in front of it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``techmatch-serve --no-demo`` in its own process on an empty data directory; its address."""
    tmp_path = tmp_path_factory.mktemp("server")
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "--no-demo", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "MATCHER_HOME": str(tmp_path / "home")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, url, tmp_path, seconds=120)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_until_up(
    process: subprocess.Popen[bytes], url: str, tmp_path: Path, seconds: float = 180
) -> None:
    """Wait for a server process to answer /health (its logs, ``*.log`` in tmp_path, if it dies)."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, "\n".join(p.read_text() for p in tmp_path.glob("*.log"))
        assert time.monotonic() < deadline, "a server did not start"
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.3)


def raw_get(url: str, target: str) -> bytes:
    """The whole answer to ``GET target`` over a plain socket (httpx refuses URLs this long)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("url_bytes", [20_000, 1_000_000])
def test_a_long_url_gets_414_from_the_real_server(server: str, url_bytes: int) -> None:
    target = "/api/v1/technologies?q=" + "a" * url_bytes
    answer = raw_get(server, target)  # a reset would raise ConnectionResetError here
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert b"at most 8,192 are accepted" in answer
