"""Watermarks and EMIT ON WINDOW CLOSE over psycopg.

`WATERMARK FOR ts AS ts - INTERVAL '10 seconds'` in CREATE TABLE; views over the table drop
rows that arrive behind the watermark and count them (SHOW MATERIALIZED VIEWS); an
`EMIT ON WINDOW CLOSE` view shows each window once, final, after the watermark passes its
end. The oracle is a model of the watermark computed here from the rows the test wrote:
a row is late when it is more than the delay behind an earlier row of its partition (or
behind the view's watermark), whatever steps the server cut the rows into; the test still
waits for the views after each wave, to check them wave by wave."""

import random
import signal
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import Server, show_views as views, wait_views_applied as wait_applied

EPOCH = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
DELAY = timedelta(seconds=10)


def insert_wave(conn, rows):
    """One INSERT statement: one append, applied by the views in one step."""
    values = ", ".join(["(%s, %s, %s)"] * len(rows))
    conn.execute(f"INSERT INTO events VALUES {values}", [v for row in rows for v in row])


class Model:
    """The watermark as the server keeps it for a one-partition source: a row is late when
    it is more than the delay behind an earlier row (in the order rows were written)."""

    def __init__(self):
        self.max_ts = None
        self.accepted = []
        self.late = 0

    @property
    def watermark(self):
        return None if self.max_ts is None else self.max_ts - DELAY

    def wave(self, rows):
        for row in rows:
            if self.watermark is not None and row[2] < self.watermark:
                self.late += 1
            else:
                self.accepted.append(row)
                self.max_ts = max(row[2], self.max_ts or row[2])

    def closed_windows(self):
        """(window_start, window_end, count, sum(id)) of the minutes the watermark has passed."""
        windows = {}
        for (id_, _, ts) in self.accepted:
            start = ts.replace(second=0, microsecond=0)
            n, total = windows.get(start, (0, 0))
            windows[start] = (n + 1, total + id_)
        return sorted((s, s + timedelta(minutes=1), n, t) for s, (n, t) in windows.items()
                      if self.watermark is not None and s + timedelta(minutes=1) <= self.watermark)


def make_wave(next_id, base, count, late):
    """`count` rows within a minute after `base`, `late` of them far behind it."""
    rows = []
    for i in range(count):
        ts = base + timedelta(seconds=random.uniform(0, 60))
        if i < late:
            ts = base - timedelta(seconds=random.uniform(30, 300))
        rows.append((next_id + i, random.choice(["eu", "us", "ap"]), ts))
    random.shuffle(rows)
    return rows


CREATE_EVENTS = ("CREATE TABLE events (id bigint, region text, ts timestamptz, "
                 "WATERMARK FOR ts AS ts - INTERVAL '10 seconds')")
PER_MINUTE = ("SELECT window_start, window_end, count(*) AS n, sum(id) AS total "
              "FROM TUMBLE(events, ts, INTERVAL '1 minute') GROUP BY window_start, window_end")


def create_views(conn):
    conn.execute("CREATE MATERIALIZED VIEW kept AS SELECT id, region, ts FROM events WHERE region <> 'none'")
    conn.execute("CREATE MATERIALIZED VIEW per_region AS SELECT region, count(*) AS n FROM events GROUP BY region")
    conn.execute(f"CREATE MATERIALIZED VIEW closed AS {PER_MINUTE} EMIT ON WINDOW CLOSE")


def server_with_views(tmp_path):
    """A server of its own (tests that restart it) with `events` and the three views."""
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            conn.execute(CREATE_EVENTS)
            create_views(conn)
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    return server


def check(conn, model):
    shown = wait_applied(conn)
    for name in ("kept", "per_region", "closed"):
        assert shown[name]["late_rows"] == model.late, (name, shown[name])
        assert shown[name]["watermark"] == model.watermark, (name, shown[name])
    assert shown["closed"]["emit"] == "on window close" and shown["kept"]["emit"] == "on update"
    kept = sorted(conn.execute("SELECT id, region, ts FROM kept").fetchall())
    assert kept == sorted(model.accepted)
    per_region = dict(conn.execute("SELECT region, n FROM per_region").fetchall())
    want = {}
    for (_, region, _) in model.accepted:
        want[region] = want.get(region, 0) + 1
    assert per_region == want
    closed = sorted(conn.execute("SELECT window_start, window_end, n, total FROM closed").fetchall())
    assert closed == model.closed_windows()


def test_late_rows_are_dropped_by_every_view_and_windows_close_once(server):
    model = Model()
    with server.connect() as conn:
        conn.execute(CREATE_EVENTS)
        create_views(conn)
        shown = views(conn)
        assert shown["closed"]["watermark"] is None and shown["closed"]["late_rows"] == 0
        next_id = 1
        for wave in range(8):
            rows = make_wave(next_id, EPOCH + timedelta(seconds=45 * wave), 60, late=0 if wave == 0 else 4)
            next_id += len(rows)
            insert_wave(conn, rows)
            model.wave(rows)
            check(conn, model)
        assert model.late > 0 and len(model.closed_windows()) >= 4
        # Every row is still in the table: the watermark only decides what views apply.
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == next_id - 1
        # The change log holds each closed window once, as an insert.
        with conn.transaction():
            conn.execute("DECLARE c CURSOR FOR SUBSCRIBE closed FROM EARLIEST")
            cur = conn.execute("FETCH 1000 FROM c WITH (timeout = '500ms')")
            names = [d.name for d in cur.description]
            changes = [dict(zip(names, r)) for r in cur.fetchall()]
        assert sorted(c["window_start"] for c in changes) == [w[0] for w in model.closed_windows()], changes
        assert all(c["_change"] == "insert" for c in changes), changes


def test_windows_stay_closed_and_open_ones_keep_their_rows_across_restarts(tmp_path):
    server = server_with_views(tmp_path)
    model = Model()
    try:
        next_id = 1
        for wave in range(6):
            rows = make_wave(next_id, EPOCH + timedelta(seconds=40 * wave), 50, late=0 if wave == 0 else 3)
            next_id += len(rows)
            with server.connect() as conn:
                insert_wave(conn, rows)
                model.wave(rows)
                check(conn, model)
            # Alternately a clean stop and a kill -9 right after the views applied the wave.
            server.stop(signal.SIGTERM if wave % 2 else signal.SIGKILL)
            server.start()
            with server.connect() as conn:
                check(conn, model)
    finally:
        server.stop(signal.SIGKILL)


def test_in_order_rows_over_several_partitions_are_never_late(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE events (id bigint, region text, ts timestamptz, "
                     "WATERMARK FOR ts AS ts - INTERVAL '10 seconds') WITH (partitions = 3, key = 'id')")
        conn.execute(f"CREATE MATERIALIZED VIEW closed AS {PER_MINUTE} EMIT ON WINDOW CLOSE")
        rows = [(i, "eu", EPOCH + timedelta(seconds=i * 0.5 + random.uniform(0, 5))) for i in range(1, 1201)]
        for at in range(0, len(rows), 200):
            insert_wave(conn, rows[at:at + 200])
        shown = wait_applied(conn)["closed"]
        assert shown["late_rows"] == 0
        # Every minute the watermark passed in every partition is in the view, complete.
        watermark = shown["watermark"]
        want = conn.execute(f"SELECT * FROM ({PER_MINUTE}) w WHERE window_end <= %s ORDER BY 1", [watermark]).fetchall()
        assert len(want) >= 8
        assert conn.execute("SELECT window_start, window_end, n, total FROM closed ORDER BY 1").fetchall() == want


@pytest.mark.parametrize("sql, code, words", [
    ("CREATE TABLE t (id int, ts timestamptz, WATERMARK FOR id AS id)", "42804", "timestamp"),
    ("CREATE TABLE t (id int, ts timestamptz, WATERMARK FOR nope AS nope)", "42703", "nope"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR ts AS ts - INTERVAL '-5 seconds')", "22023", "negative"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR ts AS ts - INTERVAL '1 month')", "22023", "fixed length"),
    ("CREATE TABLE t (a timestamptz, b timestamptz, WATERMARK FOR a AS b - INTERVAL '1 second')", "42P17", "WATERMARK FOR a"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR ts AS ts + INTERVAL '1 second')", "42P17", "WATERMARK FOR ts"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR ts)", "42601", "AS"),
    ("CREATE MATERIALIZED VIEW m AS SELECT window_end, count(*) FROM TUMBLE(plain, ts, INTERVAL '1 minute') "
     "GROUP BY window_end EMIT ON WINDOW CLOSE", "42P17", "watermark"),
    ("CREATE MATERIALIZED VIEW m AS SELECT id FROM events EMIT ON WINDOW CLOSE", "42P17", "aggregation"),
    ("CREATE MATERIALIZED VIEW m AS SELECT region, count(*) FROM events GROUP BY region EMIT ON WINDOW CLOSE", "42P17", "window_end"),
    ("CREATE MATERIALIZED VIEW m WITH (emit = 'sometimes') AS SELECT id FROM events", "22023", "emit"),
    ("CREATE MATERIALIZED VIEW m AS SELECT window_end, count(*) FROM TUMBLE(two, b, INTERVAL '1 minute') "
     "GROUP BY window_end EMIT ON WINDOW CLOSE", "42P17", "watermark column"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR ts AS ts - INTERVAL '200000000 days')", "22023", "out of range"),
    ("CREATE TABLE t (ts timestamptz, WATERMARK FOR )", "42601", "WATERMARK FOR"),
])
def test_refusals(server, sql, code, words):
    with server.connect() as conn:
        conn.execute(CREATE_EVENTS)
        conn.execute("CREATE TABLE plain (ts timestamptz)")
        conn.execute("CREATE TABLE two (a timestamptz, b timestamptz, WATERMARK FOR a AS a)")
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql)
        assert err.value.sqlstate == code, err.value
        assert words.lower() in str(err.value).lower(), err.value
        # Nothing was half created.
        assert conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('t', 'm')").fetchone()[0] == 0


def test_the_watermark_clause_in_its_other_spellings(server):
    """Parenthesized, as a WITH option, and validated before OR REPLACE drops anything."""
    with server.connect() as conn:
        conn.execute("CREATE TABLE a (ts timestamptz, WATERMARK FOR ts AS (ts - INTERVAL '1' MINUTE))")
        conn.execute("CREATE TABLE b (ts timestamptz) WITH (watermark = ts - INTERVAL '30 seconds')")
        for table in ("a", "b"):
            conn.execute(f"CREATE MATERIALIZED VIEW {table}_rows AS SELECT ts FROM {table}")
            conn.execute(f"INSERT INTO {table} VALUES (%s)", [EPOCH])
        shown = wait_applied(conn)
        assert shown["a_rows"]["watermark"] == EPOCH - timedelta(minutes=1)
        assert shown["b_rows"]["watermark"] == EPOCH - timedelta(seconds=30)
        conn.execute("CREATE TABLE keep (ts timestamptz)")
        conn.execute("INSERT INTO keep VALUES (%s)", [EPOCH])
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("CREATE OR REPLACE TABLE keep (ts timestamptz, WATERMARK FOR nope AS nope)")
        assert conn.execute("SELECT count(*) FROM keep").fetchone()[0] == 1


def test_exactly_once_with_late_rows_across_kill9_during_maintenance(tmp_path):
    """Waves written without waiting for the views, the server killed at a random moment
    while they apply them: after the restart every view equals the model. (Lateness does
    not depend on how steps cut the rows, so the model holds whatever was applied when.)"""
    server = server_with_views(tmp_path)
    model = Model()
    try:
        next_id, wave = 1, 0
        for round_ in range(3):
            with server.connect() as conn:
                for _ in range(4):
                    rows = make_wave(next_id, EPOCH + timedelta(seconds=30 * wave), 300, late=0 if wave == 0 else 20)
                    insert_wave(conn, rows)
                    model.wave(rows)
                    next_id, wave = next_id + len(rows), wave + 1
            time.sleep(random.uniform(0, 0.05))
            server.kill9()
            server.start()
            with server.connect() as conn:
                check(conn, model)
    finally:
        server.stop(signal.SIGKILL)


def test_rows_without_an_event_time_are_late(server):
    """A NULL event time cannot be judged on time: counted as late, left out of the views
    (in a window view it would hold a group no watermark closes), kept in the table."""
    with server.connect() as conn:
        conn.execute(CREATE_EVENTS)
        create_views(conn)
        insert_wave(conn, [(1, "eu", EPOCH), (2, "eu", None), (3, "us", EPOCH + timedelta(minutes=2))])
        shown = wait_applied(conn)
        assert [shown[v]["late_rows"] for v in ("kept", "per_region", "closed")] == [1, 1, 1]
        assert sorted(r[0] for r in conn.execute("SELECT id FROM kept").fetchall()) == [1, 3]
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 3
        assert conn.execute("SELECT window_start, n FROM closed").fetchall() == [(EPOCH, 1)]
