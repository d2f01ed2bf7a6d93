"""A throwaway PostgreSQL server for tests: initdb in a temporary directory (as the
``postgres`` user when running as root, since initdb and postgres refuse root),
started on 127.0.0.1 at a free port with trust authentication and fsync off,
stopped and removed whatever happens. Used by python/tests and tests/cli as the
``postgres_server`` fixture (session scope: initdb costs seconds).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest


def _bindir() -> str:
    if os.environ.get("KVDEX_PG_BINDIR"):
        return os.environ["KVDEX_PG_BINDIR"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.dir = tempfile.mkdtemp(prefix="kvdex-pg-pytest-")
        self._as_user: list = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        self.running = False
        self._run("initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth=trust", "-E",
                  "UTF8", "--locale=C.UTF-8")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(self._as_user + [f"{self.bindir}/{tool}", *args], cwd="/", check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", f"{self.dir}/data", "-l",
                  f"{self.dir}/postgres.log", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} "
                  f"-c unix_socket_directories={self.dir} -c fsync=off -c max_connections=300")
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "immediate", "-D",
                      f"{self.dir}/data")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def uri(self, driver: str = "") -> str:
        scheme = "postgresql+" + driver if driver else "postgresql"
        return f"{scheme}://postgres@127.0.0.1:{self.port}/postgres"

    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def psql(self, sql: str) -> str:
        out = subprocess.run([f"{self.bindir}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                              "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                              "postgres", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()
