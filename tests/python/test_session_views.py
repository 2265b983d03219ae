"""Materialized views with window functions partitioned by key, over psycopg: SESSION
windows per key, and `OVER (PARTITION BY k …)`.

A late row can change rows emitted long ago (it may bridge two sessions into one), so
these views are change logs: the keys a step touches are recomputed from their rows and
their old rows replaced. The oracle is the same query run as a batch SELECT, after every
wave and after kill -9 during maintenance."""

import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta

import psycopg
import pytest

from conftest import Server, crash_rounds, show_views as views, wait_views_applied as wait_applied

EPOCH = datetime(2025, 3, 1, 12)
KEYS = 25

VIEWS = {
    "sessions": "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high "
                "FROM SESSION(ev, ts, INTERVAL '5 minutes') GROUP BY k, window_start, window_end",
    "numbered": "SELECT k, id, row_number() OVER (PARTITION BY k ORDER BY ts, id) AS nth, "
                "sum(v) OVER (PARTITION BY k ORDER BY ts, id) AS running FROM ev",
    "long_sessions": "SELECT k, window_start, count(*) AS n FROM SESSION(ev, ts, INTERVAL '5 minutes') "
                     "WHERE v > 10 GROUP BY k, window_start HAVING count(*) > 1",
}


def check(conn):
    shown = wait_applied(conn)
    total = conn.execute("SELECT count(*) FROM ev").fetchone()[0]
    for name, sql in VIEWS.items():
        got = Counter(conn.execute(f"SELECT * FROM {name}").fetchall())
        want = Counter(conn.execute(sql).fetchall())
        assert got == want, f"{name}: missing {list((want - got).items())[:3]}, extra {list((got - want).items())[:3]}"
        assert shown[name]["held_rows"] == total, shown[name]


def start(tmp_path):
    server = Server(tmp_path / "data").start()
    with server.connect() as conn:
        conn.execute("CREATE TABLE ev (id BIGINT, k INT, ts TIMESTAMP, v INT)")
        for name, sql in VIEWS.items():
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql}")
    return server


class Waves:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.next_id = 1
        self.wave = 0

    def write(self, conn, count=150):
        rows = []
        for _ in range(count):
            # Mostly near the wave's time, some far back: those land between old sessions
            # and may join two of them.
            minutes = self.wave * 6 + self.rng.uniform(0, 6) if self.rng.random() < 0.8 else self.rng.uniform(0, self.wave * 6 + 6)
            rows.append((self.next_id, self.rng.randrange(KEYS), EPOCH + timedelta(minutes=minutes), self.rng.randrange(30)))
            self.next_id += 1
        values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
        conn.execute(f"INSERT INTO ev VALUES {values}", [v for row in rows for v in row])
        self.wave += 1


def test_session_and_partitioned_windows_equal_the_batch_query_as_rows_arrive(tmp_path):
    server = start(tmp_path)
    try:
        waves = Waves(seed=3)
        with server.connect() as conn:
            for _ in range(10):
                waves.write(conn)
                check(conn)
            assert conn.execute("SELECT count(*) FROM sessions WHERE n > 1").fetchone()[0] > 10, "sessions hold several rows"
    finally:
        server.stop(signal.SIGKILL)


def test_a_row_that_bridges_two_sessions_merges_them(tmp_path):
    server = start(tmp_path)
    try:
        with server.connect() as conn:
            conn.execute("INSERT INTO ev VALUES (1, 7, %s, 1), (2, 7, %s, 2)", (EPOCH, EPOCH + timedelta(minutes=8)))
            wait_applied(conn)
            assert conn.execute("SELECT n FROM sessions WHERE k = 7 ORDER BY window_start").fetchall() == [(1,), (1,)]
            conn.execute("INSERT INTO ev VALUES (3, 7, %s, 3)", (EPOCH + timedelta(minutes=4),))
            wait_applied(conn)
            assert conn.execute("SELECT window_start, window_end, n, total FROM sessions WHERE k = 7").fetchall() == [
                (EPOCH, EPOCH + timedelta(minutes=13), 3, 6)]
            # SUBSCRIBE: the two sessions were inserted, then deleted when the merged one
            # was inserted; the log folds to the result.
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("DECLARE c CURSOR FOR SUBSCRIBE sessions FROM EARLIEST")
                changes = cur.execute("FETCH 20 FROM c WITH (timeout = '1s')").fetchall()
                names = [d.name for d in cur.description]
            at = {n: i for i, n in enumerate(names)}
            log = [(r[at["window_start"]], r[at["n"]], r[at["_change"]]) for r in changes]
            assert log[:2] in ([(EPOCH, 1, "insert"), (EPOCH + timedelta(minutes=8), 1, "insert")],
                               [(EPOCH + timedelta(minutes=8), 1, "insert"), (EPOCH, 1, "insert")]), log
            assert sorted(log[2:]) == [(EPOCH, 1, "delete"), (EPOCH, 3, "insert"), (EPOCH + timedelta(minutes=8), 1, "delete")], log
    finally:
        server.stop(signal.SIGKILL)


def test_exactly_once_across_kill9_during_maintenance(tmp_path):
    server = start(tmp_path)
    waves = Waves(seed=5)
    try:
        crash_rounds(server, lambda conn: [waves.write(conn, count=300) for _ in range(4)], check)
        with server.connect() as conn:
            waves.write(conn)
            check(conn)
    finally:
        server.stop(signal.SIGKILL)


def test_late_rows_stay_out_of_sessions_across_restarts(tmp_path):
    """Over a table with a watermark, a late row that would bridge two sessions is dropped
    and counted; after kill -9 the key's next row recomputes its sessions without it."""
    server = Server(tmp_path / "data").start()
    session = "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS total FROM SESSION({}, ts, INTERVAL '5 minutes') GROUP BY k, window_start, window_end"
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE wev (k INT, ts TIMESTAMP, v INT, late BOOLEAN, WATERMARK FOR ts AS ts - INTERVAL '2 minutes')")
            conn.execute(f"CREATE MATERIALIZED VIEW s AS {session.format('wev')}")
            # The oracle's table: the same rows but the late ones (sessions are made before
            # WHERE filters their rows, so filtering the late row out would be too late).
            conn.execute("CREATE TABLE on_time (k INT, ts TIMESTAMP, v INT, late BOOLEAN)")
            minute = lambda m: EPOCH + timedelta(minutes=m)
            # In time order: a row more than 2 minutes behind an earlier one is late.
            conn.execute("INSERT INTO wev VALUES (1, %s, 1, false), (2, %s, 5, false), (1, %s, 2, false)", (minute(0), minute(1), minute(8)))
            # Time moves on (key 2): the watermark passes minute 18.
            conn.execute("INSERT INTO wev VALUES (2, %s, 6, false)", (minute(20),))
            # Minute 4 would join key 1's two sessions, but it is behind the watermark.
            conn.execute("INSERT INTO wev VALUES (1, %s, 100, true)", (minute(4),))
            conn.execute("INSERT INTO on_time SELECT k, ts, v, late FROM wev WHERE NOT late")
            oracle = session.format("on_time")
            for restart in (False, True):
                if restart:
                    server.kill9()
                    server.start()
                with server.connect() as c:
                    shown = wait_applied(c)
                    assert shown["s"]["late_rows"] == 1, shown["s"]
                    assert Counter(c.execute("SELECT * FROM s").fetchall()) == Counter(c.execute(oracle).fetchall())
                    assert c.execute("SELECT count(*) FROM s WHERE k = 1").fetchone()[0] == 2, "the late row merged nothing"
            with server.connect() as c:
                # Key 1 is recomputed from its rows: the late row is not among them.
                c.execute("INSERT INTO wev VALUES (1, %s, 3, false)", (minute(21),))
                c.execute("INSERT INTO on_time VALUES (1, %s, 3, false)", (minute(21),))
                wait_applied(c)
                assert Counter(c.execute("SELECT * FROM s").fetchall()) == Counter(c.execute(oracle).fetchall())
                assert c.execute("SELECT n FROM s WHERE k = 1 ORDER BY window_start").fetchall() == [(1,), (1,), (1,)]
    finally:
        server.stop(signal.SIGKILL)


@pytest.mark.parametrize("sql, words", [
    ("CREATE MATERIALIZED VIEW m AS SELECT window_start, count(*) FROM SESSION(ev, ts, INTERVAL '5 minutes') GROUP BY window_start",
     "without partition by"),
    ("CREATE MATERIALIZED VIEW m AS SELECT id, row_number() OVER (ORDER BY ts) FROM ev", "without partition by"),
    ("CREATE MATERIALIZED VIEW m AS SELECT id, row_number() OVER (PARTITION BY k ORDER BY ts) FROM ev", "must show k"),
    ("CREATE MATERIALIZED VIEW m AS SELECT e.k, row_number() OVER (PARTITION BY e.k ORDER BY e.ts) FROM ev e JOIN other o ON e.k = o.k",
     "exactly one table"),
])
def test_windows_that_are_not_maintained_are_refused(tmp_path, sql, words):
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE ev (id BIGINT, k INT, ts TIMESTAMP, v INT)")
            conn.execute("CREATE TABLE other (k INT)")
            with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
                conn.execute(sql)
            assert words in str(err.value).lower(), err.value
            assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'm'").fetchone()[0] == 0
    finally:
        server.stop(signal.SIGKILL)
