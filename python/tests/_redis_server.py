"""A real redis-server for the Redis tests (Debian's package): on 127.0.0.1 at a
free port, in a temporary directory, killed when the fixture ends whatever happened.

Import the fixture into a test module: ``from _redis_server import redis_server``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen

    @property
    def uri(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self):
        import redis

        return redis.Redis(host=self.host, port=self.port)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (Debian package redis-server; scripts/install-deps.sh)"
    directory = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--logfile", str(directory / "redis.log"), "--daemonize", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"redis-server did not start; log: {(directory / 'redis.log').read_text()}")
            time.sleep(0.01)
        yield RedisServer("127.0.0.1", port, process)
    finally:
        process.kill()
        process.wait()
