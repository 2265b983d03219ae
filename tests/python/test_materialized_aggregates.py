"""Aggregating materialized views over psycopg: every aggregate DataFusion knows, with and
without GROUP BY, HAVING and windows, maintained incrementally and compared with the
same query run as a batch SELECT (the oracle) after each wave of rows, including late
and out-of-order ones; their change log through SUBSCRIBE; and exactly once across
`kill -9` during maintenance."""

import math
import random
import signal
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors as pg_errors

from conftest import Server, insert_until_killed

# Maintenance runs in the background: waits below bound liveness, they do not time it.
CATCH_UP_TIMEOUT_S = 20
EPOCH = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)


def same(a, b):
    """Rows equal, floats within rounding (merging partial sums adds in another order)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True


def wait_equal(conn, view_sql, batch_sql):
    """Polls until the view returns what the batch query returns; returns the rows."""
    deadline = time.time() + CATCH_UP_TIMEOUT_S
    key = lambda r: tuple((v is None, str(v)) for v in r)
    while True:
        got = sorted(conn.execute(view_sql).fetchall(), key=key)
        want = sorted(conn.execute(batch_sql).fetchall(), key=key)
        if len(got) == len(want) and all(same(g, w) for g, w in zip(got, want)):
            return got
        if time.time() > deadline:
            raise AssertionError(f"view never caught up:\n view: {got[:10]}…\nbatch: {want[:10]}…")
        time.sleep(0.05)


AGGREGATES = """
    region,
    count(*) AS n,
    count(ms) AS n_ms,
    count(DISTINCT user_id) AS users,
    sum(ms) AS total,
    avg(ms) AS mean,
    min(ms) AS low,
    max(url) AS last_url,
    stddev(ms) AS spread,
    first_value(url ORDER BY ts) AS first_url,
    last_value(url ORDER BY ts) AS last_seen,
    bool_or(ms > 90) AS any_slow
"""


def insert_wave(conn, start, count):
    rows = []
    for i in range(start, start + count):
        ms = None if i % 11 == 0 else round(random.uniform(0, 100), 3)
        # Out of order: timestamps jump back and forth within an hour.
        at = EPOCH + timedelta(seconds=i * 7 % 3600)
        rows.append((i % 37, f"/p{i % 13}", random.choice(["eu", "us", "ap", None]), ms, at))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO clicks VALUES (%s, %s, %s, %s, %s)", rows)


def test_every_aggregate_equals_the_batch_query(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE clicks (user_id int, url text, region text, ms float8, ts timestamptz) WITH (partitions = 3)")
        insert_wave(conn, 0, 200)
        query = f"SELECT {AGGREGATES} FROM clicks GROUP BY region"
        conn.execute(f"CREATE MATERIALIZED VIEW per_region AS {query}")
        # The backfill is done when CREATE returns.
        cols = "region, n, n_ms, users, total, mean, low, last_url, spread, first_url, last_seen, any_slow"
        got = sorted(conn.execute(f"SELECT {cols} FROM per_region").fetchall(), key=lambda r: str(r[0]))
        want = sorted(conn.execute(query).fetchall(), key=lambda r: str(r[0]))
        assert len(got) == len(want) == 4 and all(same(g, w) for g, w in zip(got, want)), (got, want)
        for wave in range(1, 6):
            insert_wave(conn, wave * 200, random.randint(1, 300))
            wait_equal(conn, f"SELECT {cols} FROM per_region", query)
        assert [d.name for d in conn.execute("SELECT * FROM per_region LIMIT 0").description] == cols.split(", ")
        # DESCRIBE shows the columns the view is queried with, not its change log's.
        assert [r[0] for r in conn.execute("DESCRIBE per_region").fetchall()] == cols.split(", ")


def test_having_and_expressions_over_groups_change_rows_in_and_out(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE t (k text, v int)")
        conn.execute(
            "CREATE MATERIALIZED VIEW hot AS SELECT upper(k) AS key, sum(v) * 10 AS score, count(*) AS n "
            "FROM t WHERE v IS NOT NULL GROUP BY k HAVING sum(v) > 5"
        )
        batch = "SELECT upper(k), sum(v) * 10, count(*) FROM t WHERE v IS NOT NULL GROUP BY k HAVING sum(v) > 5"
        conn.execute("INSERT INTO t VALUES ('a', 3), ('a', 4), ('b', 1), ('c', NULL)")
        assert wait_equal(conn, "SELECT * FROM hot", batch) == [("A", 70, 2)]
        conn.execute("INSERT INTO t VALUES ('a', -10), ('b', 9)")  # a drops out, b comes in
        assert wait_equal(conn, "SELECT * FROM hot", batch) == [("B", 100, 2)]
        # The change log says what happened to each row, in order.
    with server.connect(autocommit=False) as conn:
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE hot")
        rows = conn.execute("FETCH ALL c WITH (timeout = '300ms')").fetchall()
        changes = [(r[2], r[3], r[4], r[5]) for r in rows]
        assert changes == [("A", 70, 2, "insert"), ("A", 70, 2, "delete"), ("B", 100, 2, "insert")], changes
        conn.rollback()


def test_updates_are_before_and_after_pairs_and_fold_to_the_result(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE s (k int, v float8) WITH (partitions = 2)")
        conn.execute("CREATE MATERIALIZED VIEW sums AS SELECT k, sum(v) AS total FROM s GROUP BY k")
        for i in range(30):
            conn.execute("INSERT INTO s VALUES (%s, %s)", (i % 4, float(i)))
        wait_equal(conn, "SELECT k, total FROM sums", "SELECT k, sum(v) FROM s GROUP BY k")
    with server.connect(autocommit=False) as conn:
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE sums")
        log = conn.execute("FETCH ALL c WITH (timeout = '300ms')").fetchall()
        conn.rollback()
    current = {}
    for (_partition, _offset, k, total, change) in log:
        assert change in ("insert", "update_before", "update_after", "delete")
        if change in ("insert", "update_after"):
            current[k] = total
        else:
            assert current.pop(k) == total, "a before image is the row the view showed"
    with server.connect() as conn:
        assert sorted(current.items()) == sorted(conn.execute("SELECT k, total FROM sums").fetchall())


def test_without_group_by_there_is_always_one_row(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE e (x int)")
        conn.execute("CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(x) AS s, max(x) AS top FROM e")
        conn.execute("CREATE MATERIALIZED VIEW counted AS SELECT count(*) AS n FROM e")
        # The one row is there as soon as CREATE returns, as the batch query has it.
        assert conn.execute("SELECT * FROM totals").fetchall() == [(0, None, None)]
        assert conn.execute("SELECT * FROM counted").fetchall() == [(0,)]
        conn.execute("INSERT INTO e SELECT g FROM generate_series(1, 1000) AS t(g)")
        assert wait_equal(conn, "SELECT * FROM totals", "SELECT count(*), sum(x), max(x) FROM e") == [(1000, 500500, 1000)]
        assert wait_equal(conn, "SELECT * FROM counted", "SELECT count(*) FROM e") == [(1000,)]


def test_tumbling_and_hopping_windows(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE readings (sensor text, temp float8, at timestamptz)")
        conn.execute("CREATE MATERIALIZED VIEW per_minute AS SELECT sensor, window_start, window_end, avg(temp) AS temp, count(*) AS n "
                     "FROM TUMBLE(readings, at, INTERVAL '1 minute') GROUP BY sensor, window_start, window_end")
        conn.execute("CREATE MATERIALIZED VIEW sliding AS SELECT window_start, max(temp) AS hottest "
                     "FROM HOP(readings, at, INTERVAL '30 seconds', INTERVAL '2 minutes') GROUP BY window_start")
        tumble = ("SELECT sensor, window_start, window_end, avg(temp), count(*) FROM TUMBLE(readings, at, INTERVAL '1 minute') "
                  "GROUP BY sensor, window_start, window_end")
        hop = "SELECT window_start, max(temp) FROM HOP(readings, at, INTERVAL '30 seconds', INTERVAL '2 minutes') GROUP BY window_start"
        for wave in range(3):
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO readings VALUES (%s, %s, %s)",
                    [(random.choice(["a", "b"]), round(random.uniform(-5, 35), 2), EPOCH + timedelta(seconds=random.randint(0, 600)))
                     for _ in range(100)],
                )
            wait_equal(conn, "SELECT sensor, window_start, window_end, temp, n FROM per_minute", tumble)
            wait_equal(conn, "SELECT window_start, hottest FROM sliding", hop)


@pytest.mark.parametrize("sql, code, words", [
    ("CREATE MATERIALIZED VIEW m AS SELECT region, count(*) FROM src GROUP BY ROLLUP (region)", "0A000", "ROLLUP"),
    ("CREATE MATERIALIZED VIEW m AS SELECT count(*) AS _change FROM src", "22023", "_change"),
    # (An aggregation over an aggregation is maintained, as views over views; an outer join is not.)
    ("CREATE MATERIALIZED VIEW m AS SELECT x.n FROM (SELECT region, count(*) AS n FROM src GROUP BY region) x "
     "LEFT JOIN src s ON x.region = s.region", "0A000", "Left joins"),
    ("CREATE MATERIALIZED VIEW m AS SELECT region, count(*) FROM src GROUP BY region ORDER BY 2", "0A000", "Sort"),
    ("CREATE MATERIALIZED VIEW m AS SELECT count(*) FROM pg_catalog.pg_class", "0A000", "not a stream table"),
    ("INSERT INTO agg VALUES ('x', 1, 'insert')", "42809", "materialized view"),
    ("CREATE MATERIALIZED VIEW m AS SELECT region, moving_avg(ms, 0) FROM src GROUP BY region", "22023", "whole number"),
    ("CREATE MATERIALIZED VIEW m AS SELECT region, anomaly(ms, ms) FROM src GROUP BY region", "22023", "constant"),
    ("CREATE MATERIALIZED VIEW m AS SELECT region, zscore(ms ORDER BY ms) FROM src GROUP BY region", "0A000", "arrive"),
])
def test_refusals(server, sql, code, words):
    with server.connect() as conn:
        conn.execute("CREATE TABLE src (region text, ms float8)")
        conn.execute("CREATE MATERIALIZED VIEW agg AS SELECT region, count(*) AS n FROM src GROUP BY region")
        with pytest.raises(psycopg.Error) as err:
            conn.execute(sql)
        assert err.value.sqlstate == code, err.value
        assert words.lower() in str(err.value).lower(), err.value
        # Nothing is left behind (no view made of a subquery for it either).
        conn.rollback()
        assert [r[1] for r in conn.execute("SHOW MATERIALIZED VIEWS").fetchall()] == ["agg"]


def test_state_tables_are_protected_and_dropped_with_the_view(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE src (region text)")
        conn.execute("CREATE MATERIALIZED VIEW agg AS SELECT region, count(*) AS n FROM src GROUP BY region")
        state_tables = lambda: [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'streamhouse' AND table_name LIKE 'mv_state_%'")]
        (state,) = state_tables()
        with pytest.raises(pg_errors.DependentObjectsStillExist):
            conn.execute(f'DROP TABLE streamhouse."{state}"')
        with pytest.raises(pg_errors.WrongObjectType):
            conn.execute(f"INSERT INTO streamhouse.\"{state}\" (g0) VALUES ('x')")
        conn.execute("DROP MATERIALIZED VIEW agg")
        assert state_tables() == []
        conn.execute("DROP TABLE src")


def test_exactly_once_across_kill9_during_maintenance(tmp_path):
    server = Server(tmp_path / "data").start()
    query = "SELECT id % 50 AS bucket, count(*) AS n, sum(id) AS total, count(DISTINCT tag) AS tags FROM events GROUP BY id % 50"
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE events (id bigint, tag text) WITH (partitions = 4, key = 'id')")
            conn.execute("INSERT INTO events SELECT x, 'old' FROM generate_series(1, 20000) AS s(x)")
            conn.execute(f"CREATE MATERIALIZED VIEW buckets AS {query}")
        next_id = 20001
        for round_ in range(3):
            next_id = insert_until_killed(server, "events", next_id, f"r{round_}")
            with server.connect() as conn:
                rows = wait_equal(conn, "SELECT bucket, n, total, tags FROM buckets", query)
                assert len(rows) == 50
        with server.connect() as conn:
            (_, _, _, lag, _, error, _) = conn.execute("SHOW MATERIALIZED VIEWS").fetchone()[:7]
            assert lag == 0 and error is None
    finally:
        server.stop(signal.SIGKILL)


def test_streaming_functions_follow_arrival_order(server):
    """zscore, anomaly and moving_avg in a view: per sensor, the latest reading to arrive
    against all its readings (z-score) and the mean of its latest five, as the rows come."""
    import statistics

    with server.connect() as conn:
        conn.execute("CREATE TABLE readings (sensor text, temp float8)")
        conn.execute("CREATE MATERIALIZED VIEW health AS SELECT sensor, zscore(temp) AS z, anomaly(temp, 2.0) AS odd, "
                     "moving_avg(temp, 5) AS recent, count(*) AS n FROM readings GROUP BY sensor")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("CREATE MATERIALIZED VIEW ordered AS SELECT sensor, zscore(temp ORDER BY temp) FROM readings GROUP BY sensor")
        arrived = {}
        for wave in range(4):
            rows = [(random.choice("abc"), round(random.gauss(20, 3), 2)) for _ in range(60)]
            if wave == 3:
                rows.append(("a", 95.0))  # a spike: the latest reading of a
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO readings VALUES (%s, %s)", rows)
            for sensor, temp in rows:
                arrived.setdefault(sensor, []).append(temp)
            want = []
            for sensor, temps in sorted(arrived.items()):
                z = (temps[-1] - statistics.mean(temps)) / statistics.stdev(temps)
                want.append((sensor, z, abs(z) > 2.0, statistics.mean(temps[-5:]), len(temps)))
            deadline = time.time() + CATCH_UP_TIMEOUT_S
            while True:
                got = conn.execute("SELECT sensor, z, odd, recent, n FROM health ORDER BY sensor").fetchall()
                if [r[-1] for r in got] == [w[-1] for w in want] or time.time() > deadline:
                    break
                time.sleep(0.05)
            assert all(same(g, w) for g, w in zip(got, want)) and len(got) == len(want), (got, want)
        assert dict((r[0], r[2]) for r in got)["a"] is True
