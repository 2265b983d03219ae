"""SESSION windows over a table with a watermark close, over psycopg: a session whose end
the watermark has passed can gain no row, so its view lets go of its rows (SHOW
MATERIALIZED VIEWS' held_rows counts only open sessions' rows), and an `EMIT ON WINDOW
CLOSE` view emits it then, once and final.

The oracle is the same query run as a batch SELECT over a second table holding the same
rows but the late ones: every session for the views that update, the sessions ending at
or before the view's watermark for the one that emits on close."""

import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import Server, crash_rounds, wait_views_applied as wait_applied

EPOCH = datetime(2025, 3, 1, 12)
KEYS = 25
GAP = "INTERVAL '5 minutes'"

# `{t}`: the watermarked table for the views, the table of on-time rows for the oracle.
VIEWS = {
    "live": "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high "
            f"FROM SESSION({{t}}, ts, {GAP}) GROUP BY k, window_start, window_end",
    "final": "SELECT k, window_start, window_end, count(*) AS n, sum(v) AS total "
             f"FROM SESSION({{t}}, ts, {GAP}) GROUP BY k, window_start, window_end",
    "busy": f"SELECT k, window_end, count(*) AS n FROM SESSION({{t}}, ts, {GAP}) WHERE v > 10 GROUP BY k, window_end HAVING count(*) > 1",
    "firsts": f"SELECT k, window_start, min(id) AS first_id, max(ts) AS last_ts FROM SESSION({{t}}, ts, {GAP}) GROUP BY k, window_start",
}
EMITS_ON_CLOSE = {"final"}


def start(tmp_path):
    server = Server(tmp_path / "data").start()
    with server.connect() as conn:
        conn.execute("CREATE TABLE ev (id BIGINT, k INT, ts TIMESTAMP, v INT, WATERMARK FOR ts AS ts - INTERVAL '2 minutes')")
        conn.execute("CREATE TABLE on_time (id BIGINT, k INT, ts TIMESTAMP, v INT)")
        for name, sql in VIEWS.items():
            emit = " EMIT ON WINDOW CLOSE" if name in EMITS_ON_CLOSE else ""
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql.format(t='ev')}{emit}")
    return server


class Waves:
    """Each wave: six minutes of event time over a few of the keys (the others' sessions
    close), a little out of order but never more than the watermark's delay, then a few
    rows half an hour behind: late."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.next_id = 1
        self.wave = 0
        self.late = 0

    def write(self, conn, count=120):
        keys = self.rng.sample(range(KEYS), 8)
        times = sorted(self.wave * 6 + self.rng.uniform(0, 6) for _ in range(count))
        rows = [(self.next_id + i, self.rng.choice(keys), EPOCH + timedelta(minutes=max(0, t - self.rng.uniform(0, 1.5))), self.rng.randrange(30))
                for i, t in enumerate(times)]
        self.next_id += count
        late = []
        if self.wave >= 6:
            for _ in range(self.rng.randrange(4)):
                late.append((self.next_id, self.rng.randrange(KEYS), EPOCH + timedelta(minutes=self.wave * 6 - 30 - self.rng.uniform(0, 10)), 1))
                self.next_id += 1
        self.late += len(late)
        values = lambda n: ", ".join(["(%s, %s, %s, %s)"] * n)
        flat = lambda rs: [v for row in rs for v in row]
        conn.execute(f"INSERT INTO ev VALUES {values(len(rows) + len(late))}", flat(rows + late))
        conn.execute(f"INSERT INTO on_time VALUES {values(len(rows))}", flat(rows))
        self.wave += 1


def naive(watermark):
    return watermark.astimezone(timezone.utc).replace(tzinfo=None)


def check(conn, waves):
    shown = wait_applied(conn)
    for name, sql in VIEWS.items():
        view = shown[name]
        assert view["late_rows"] == waves.late, view
        watermark = naive(view["watermark"])
        oracle = sql.format(t="on_time")
        got = Counter(conn.execute(f"SELECT * FROM {name}").fetchall())
        if name in EMITS_ON_CLOSE:
            want = Counter(conn.execute(f"SELECT * FROM ({oracle}) AS o WHERE window_end <= %s", (watermark,)).fetchall())
        else:
            want = Counter(conn.execute(oracle).fetchall())
        assert got == want, f"{name}: missing {list((want - got).items())[:3]}, extra {list((got - want).items())[:3]}"
        # Held: the rows of the sessions still open.
        open_rows = conn.execute(
            f"SELECT coalesce(sum(n), 0) FROM ({VIEWS['live'].format(t='on_time')}) AS o WHERE window_end > %s", (watermark,)).fetchone()[0]
        assert view["held_rows"] == open_rows, (name, view, open_rows)
    return shown


def test_closed_sessions_are_let_go_and_emitted_once(tmp_path):
    server = start(tmp_path)
    try:
        waves = Waves(seed=11)
        with server.connect() as conn:
            for _ in range(14):
                waves.write(conn)
                shown = check(conn, waves)
            total = conn.execute("SELECT count(*) FROM on_time").fetchone()[0]
            assert shown["live"]["held_rows"] < total / 4, (shown["live"], total)
            assert waves.late > 5
            assert conn.execute("SELECT count(*) FROM final").fetchone()[0] > 50
            assert conn.execute("SELECT count(*) FROM busy").fetchone()[0] > 10
            # SUBSCRIBE to the view that emits on close: inserts only, one per session.
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("DECLARE c CURSOR FOR SUBSCRIBE final FROM EARLIEST")
                log = cur.execute("FETCH 100000 FROM c WITH (timeout = '1s')").fetchall()
                at = {d.name: i for i, d in enumerate(cur.description)}
            assert {r[at["_change"]] for r in log} == {"insert"}
            sessions = [(r[at["k"]], r[at["window_start"]]) for r in log]
            assert len(sessions) == len(set(sessions)) == conn.execute("SELECT count(*) FROM final").fetchone()[0]
    finally:
        server.stop(signal.SIGKILL)


def test_exactly_once_across_kill9_while_sessions_close(tmp_path):
    server = start(tmp_path)
    waves = Waves(seed=17)
    try:
        crash_rounds(server, lambda conn: [waves.write(conn, count=300) for _ in range(4)], lambda conn: check(conn, waves))
        with server.connect() as conn:
            waves.write(conn)
            check(conn, waves)
    finally:
        server.stop(signal.SIGKILL)


def test_sessions_that_cannot_close_keep_their_rows(tmp_path):
    """A count of sessions per key depends on every session: its rows are all kept, and
    such a view cannot emit on window close."""
    server = start(tmp_path)
    try:
        with server.connect() as conn:
            per_key = f"SELECT k, count(DISTINCT window_start) AS sessions FROM SESSION(ev, ts, {GAP}) GROUP BY k"
            with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
                conn.execute(f"CREATE MATERIALIZED VIEW per_key AS {per_key} EMIT ON WINDOW CLOSE")
            assert "does not group by window_start or window_end" in str(err.value), err.value
            numbered = "SELECT k, id, row_number() OVER (PARTITION BY k ORDER BY ts) AS nth FROM ev"
            with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
                conn.execute(f"CREATE MATERIALIZED VIEW numbered AS {numbered} EMIT ON WINDOW CLOSE")
            assert "depends on every row of its partition" in str(err.value), err.value
            conn.execute(f"CREATE MATERIALIZED VIEW per_key AS {per_key}")
            waves = Waves(seed=23)
            for _ in range(8):
                waves.write(conn)
            shown = wait_applied(conn)
            on_time = conn.execute("SELECT count(*) FROM on_time").fetchone()[0]
            assert shown["per_key"]["held_rows"] == on_time, shown["per_key"]
            assert shown["live"]["held_rows"] < on_time / 2, shown["live"]
            want = Counter(conn.execute(per_key.replace("FROM SESSION(ev", "FROM SESSION(on_time")).fetchall())
            assert Counter(conn.execute("SELECT * FROM per_key").fetchall()) == want
    finally:
        server.stop(signal.SIGKILL)
