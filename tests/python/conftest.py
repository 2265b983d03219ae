"""Black-box harness: spawns the real `streamhouse` binary on port 0 with a temporary
data directory and hands tests a running server they reach with real clients."""

import json
import os
import signal
import socket
import subprocess
import random
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

BIN = os.environ.get("STREAMHOUSE_BIN", str(Path.home() / ".cache/streamhouse/target/release/streamhouse"))
START_TIMEOUT_S = 30


class Server:
    """One StreamHouse process over a data directory that outlives restarts."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.data_dir / "server.log"
        self.host = "127.0.0.1"
        self.port = None
        self.flight_addr = None  # "127.0.0.1:PORT" of the Arrow Flight SQL listener
        self.kafka_addr = None  # "127.0.0.1:PORT" of the Kafka listener
        self.http_addr = None  # "127.0.0.1:PORT" of the HTTP listener (schema registry)
        self.grpc_addr = None  # "127.0.0.1:PORT" of the gRPC ingest listener
        self.env = None  # the process's environment; None inherits the harness's

    def start(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        listeners = self.data_dir / "listeners.json"
        if listeners.exists():
            listeners.unlink()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", str(self.data_dir), "--pg-addr", "127.0.0.1:0",
             "--flight-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--flush-interval-ms", "500", *self.extra_args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env,
        )
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if listeners.exists():
                try:
                    bound = json.loads(listeners.read_text())
                    addr, self.flight_addr, self.kafka_addr, self.http_addr, self.grpc_addr = (
                        bound["pg"], bound["flight"], bound["kafka"], bound["http"], bound["grpc"])
                except (ValueError, KeyError):
                    time.sleep(0.02)
                    continue
                self.host, port = addr.rsplit(":", 1)
                self.port = int(port)
                return self
            time.sleep(0.02)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def dsn(self, **kw):
        params = {"host": self.host, "port": self.port, "user": "tester", "dbname": "streamhouse"}
        params.update(kw)
        return " ".join(f"{k}={v}" for k, v in params.items())

    @property
    def flight_uri(self):
        return f"grpc://{self.flight_addr}"

    @property
    def registry_url(self):
        return f"http://{self.http_addr}"

    def url(self):
        return f"postgresql://tester@{self.host}:{self.port}/streamhouse"

    def connect(self, **kw):
        return psycopg.connect(self.dsn(), autocommit=kw.pop("autocommit", True), **kw)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode if self.proc else None

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop(signal.SIGKILL)


@pytest.fixture
def conn(server):
    with server.connect() as c:
        yield c


def new_server(path, *args):
    return Server(path, args)


def free_port():
    """A TCP port free on 127.0.0.1 now (for servers that cannot listen on port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


VIEWS_CATCH_UP_TIMEOUT_S = 30


def show_views(conn):
    """SHOW MATERIALIZED VIEWS as dicts by view name."""
    cur = conn.execute("SHOW MATERIALIZED VIEWS")
    names = [d.name for d in cur.description]
    return {row[1]: dict(zip(names, row)) for row in cur.fetchall()}


def wait_views_applied(conn, timeout=VIEWS_CATCH_UP_TIMEOUT_S):
    """Waits until every view has recovered and applied every source row without an
    error; returns SHOW MATERIALIZED VIEWS as dicts by view name."""
    deadline = time.time() + timeout
    while True:
        shown = show_views(conn)
        if all(v["lag_rows"] == 0 and v["last_error"] is None for v in shown.values()):
            return shown
        if time.time() > deadline:
            raise AssertionError(f"views never caught up: {shown}")
        time.sleep(0.02)


def crash_rounds(server, write, check, rounds=3, max_pause_s=0.05):
    """`rounds` times: `write(conn)`, a random pause of up to `max_pause_s` while the
    server maintains views, kill -9, restart, `check(conn)`."""
    for _ in range(rounds):
        with server.connect() as conn:
            write(conn)
        time.sleep(random.uniform(0, max_pause_s))
        server.kill9()
        server.start()
        with server.connect() as conn:
            check(conn)


def insert_until_killed(server, table, next_id, tag):
    """Writes `table (id, tag)` in statements of 500 ids from `next_id` until the server is
    killed with `kill -9` at a random moment, restarts it, checks that every acknowledged
    row survived, and returns the next unused id."""
    stop = threading.Event()
    acknowledged = []

    def write():
        i = next_id
        try:
            with server.connect() as w:
                while not stop.is_set():
                    w.execute(f"INSERT INTO {table} SELECT x, '{tag}' FROM generate_series({i}, {i + 499}) AS s(x)")
                    acknowledged.append(i + 499)
                    i += 500
        except psycopg.Error:
            pass  # the server was killed under us

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(random.uniform(0.3, 0.8))
    server.kill9()
    stop.set()
    writer.join(10)
    server.start()
    with server.connect() as conn:
        # Every acknowledged row survived; rows of an unacknowledged INSERT may too.
        top = conn.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
        assert not acknowledged or top >= acknowledged[-1]
        return top + 1
