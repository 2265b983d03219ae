"""Materialized views over psycopg: created with a backfill, kept up to date as rows
arrive, readable and subscribable as tables, protected from writes and drops, refused
with 0A000 when their query cannot be maintained incrementally, and equal to the same
query run as a batch SELECT after any number of `kill -9`s during maintenance."""

import random
import signal
import time

import psycopg
import pytest
from psycopg import errors as pg_errors

from conftest import Server, insert_until_killed

# Maintenance runs in the background: waits below bound liveness, they do not time it.
CATCH_UP_TIMEOUT_S = 20


def wait_equal(conn, view_sql, batch_sql):
    """Polls until the view returns what the batch query returns; returns the rows."""
    deadline = time.time() + CATCH_UP_TIMEOUT_S
    while True:
        got = sorted(conn.execute(view_sql).fetchall())
        want = sorted(conn.execute(batch_sql).fetchall())
        if got == want:
            return got
        if time.time() > deadline:
            raise AssertionError(f"view never caught up:\n view: {got[:20]}…\nbatch: {want[:20]}…")
        time.sleep(0.05)


def test_backfill_then_incremental_maintenance(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE clicks (user_id int, url text, region text, ms float8) WITH (partitions = 3)")
        conn.execute("INSERT INTO clicks VALUES (1, '/a', 'eu', 10), (2, '/b', 'us', 20), (3, '/c', 'eu', 30)")
        conn.execute("CREATE MATERIALIZED VIEW eu AS SELECT user_id, upper(url) AS page, ms * 2 AS ms2 FROM clicks WHERE region = 'eu'")
        batch = "SELECT user_id, upper(url), ms * 2 FROM clicks WHERE region = 'eu'"
        # The backfill is done when CREATE returns.
        assert sorted(conn.execute("SELECT * FROM eu").fetchall()) == [(1, "/A", 20.0), (3, "/C", 60.0)]
        for i in range(4, 40):
            conn.execute("INSERT INTO clicks VALUES (%s, %s, %s, %s)", (i, f"/p{i}", random.choice(["eu", "us"]), float(i)))
        rows = wait_equal(conn, "SELECT user_id, page, ms2 FROM eu", batch)
        assert len(rows) >= 2
        assert [d.name for d in conn.execute("SELECT * FROM eu LIMIT 0").description] == ["user_id", "page", "ms2"]
        (schema, name, source, lag, applied, error, definition) = conn.execute("SHOW MATERIALIZED VIEWS").fetchone()[:7]
        assert (schema, name, source, lag, error) == ("public", "eu", "public.clicks", 0, None)
        assert applied is not None and "region = 'eu'" in definition


def test_views_on_views_and_subscriptions(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE t (id int, v float8)")
        conn.execute("INSERT INTO t SELECT x, x * 1.5 FROM generate_series(1, 100) AS s(x)")
        conn.execute("CREATE MATERIALIZED VIEW big AS SELECT id, v FROM t WHERE v > 30")
        conn.execute("CREATE MATERIALIZED VIEW bigger AS SELECT id FROM big WHERE v > 120")
        with pytest.raises(pg_errors.DependentObjectsStillExist):
            conn.execute("DROP MATERIALIZED VIEW big")
        conn.execute("CREATE VIEW plain AS SELECT id, v FROM t WHERE id % 2 = 0")
        conn.execute("CREATE MATERIALIZED VIEW over_plain AS SELECT id FROM plain WHERE v < 30")
        conn.execute("INSERT INTO t SELECT x, x * 1.5 FROM generate_series(101, 120) AS s(x)")
        wait_equal(conn, "SELECT id FROM bigger", "SELECT id FROM t WHERE v > 120")
        wait_equal(conn, "SELECT id FROM over_plain", "SELECT id FROM t WHERE id % 2 = 0 AND v < 30")
        # A view's table is a stream table: it can be subscribed to.
    with server.connect(autocommit=False) as conn:
        conn.execute("DECLARE c CURSOR FOR SUBSCRIBE bigger")
        rows = conn.execute("FETCH ALL c WITH (timeout = '300ms')").fetchall()
        assert sorted(r[2] for r in rows) == list(range(81, 121))
        conn.rollback()


@pytest.mark.parametrize("sql, code, words", [
    ("CREATE MATERIALIZED VIEW m AS SELECT region, sum(ms) OVER () FROM src", "0A000", "PARTITION BY"),
    ("CREATE MATERIALIZED VIEW m AS SELECT * FROM src ORDER BY ms", "0A000", "Sort"),
    ("CREATE MATERIALIZED VIEW m AS SELECT a.region FROM src a JOIN src b ON a.ms = b.ms", "0A000", "Join"),
    ("CREATE MATERIALIZED VIEW m AS SELECT * FROM src LIMIT 5", "0A000", "Limit"),
    ("CREATE MATERIALIZED VIEW m AS SELECT 1 AS one", "0A000", "one stream table"),
    ("CREATE MATERIALIZED VIEW m AS SELECT * FROM src WHERE ms > (SELECT avg(ms) FROM src)", "0A000", "subqueries"),
    ("INSERT INTO streamhouse.mv_progress VALUES (1, 0, 0)", "42809", "materialized views only"),
    ("DROP TABLE streamhouse.mv_progress", "2BP01", "progress"),
    ("CREATE MATERIALIZED VIEW m AS SELECT * FROM nosuch", "42P01", "nosuch"),
    ("CREATE MATERIALIZED VIEW src AS SELECT * FROM src", "42P07", "src"),
    ("INSERT INTO mv VALUES ('x', 1)", "42809", "materialized view"),
    ("COPY mv FROM STDIN", "42809", "materialized view"),
    ("DROP TABLE mv", "42809", "DROP MATERIALIZED VIEW"),
    ("DROP TABLE src", "2BP01", "mv"),
    ("DROP MATERIALIZED VIEW src", "42809", "not a materialized view"),
    ("DROP MATERIALIZED VIEW nosuch", "42P01", "nosuch"),
])
def test_refusals(server, sql, code, words):
    with server.connect() as conn:
        conn.execute("CREATE TABLE src (region text, ms float8)")
        conn.execute("CREATE MATERIALIZED VIEW mv AS SELECT region, ms FROM src WHERE ms > 1")
        with pytest.raises(psycopg.Error) as err:
            if sql.startswith("COPY"):
                with conn.cursor().copy(sql) as copy:
                    copy.write("x\t1\n")
            else:
                conn.execute(sql)
        assert err.value.sqlstate == code, err.value
        assert words.lower() in str(err.value).lower(), err.value
        conn.execute("CREATE MATERIALIZED VIEW IF NOT EXISTS mv AS SELECT region FROM src")
        assert conn.execute("SELECT count(*) FROM mv").fetchone() == (0,)


def test_drop_stops_maintenance_and_frees_the_name(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE s (n int)")
        conn.execute("INSERT INTO s VALUES (1), (2)")
        conn.execute("CREATE MATERIALIZED VIEW m AS SELECT n FROM s WHERE n > 1")
        conn.execute("DROP MATERIALIZED VIEW m")
        conn.execute("DROP MATERIALIZED VIEW IF EXISTS m")
        conn.execute("INSERT INTO s VALUES (3)")
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []
        conn.execute("CREATE MATERIALIZED VIEW m AS SELECT n * 10 AS n10 FROM s")
        assert sorted(conn.execute("SELECT * FROM m").fetchall()) == [(10,), (20,), (30,)]
        conn.execute("DROP MATERIALIZED VIEW m")
        conn.execute("DROP TABLE s")  # no view depends on it any more


def test_exactly_once_across_kill9_during_maintenance(tmp_path):
    server = Server(tmp_path / "data").start()
    batch = "SELECT id, tag FROM events WHERE id % 3 <> 0"
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE events (id bigint, tag text) WITH (partitions = 4, key = 'id')")
            conn.execute("INSERT INTO events SELECT x, 'old' FROM generate_series(1, 20000) AS s(x)")
            conn.execute("CREATE MATERIALIZED VIEW kept AS SELECT id, tag FROM events WHERE id % 3 <> 0")
        next_id = 20001
        for round_ in range(3):
            next_id = insert_until_killed(server, "events", next_id, f"r{round_}")
            with server.connect() as conn:
                rows = wait_equal(conn, "SELECT id, tag FROM kept", batch)
                ids = [r[0] for r in rows]
                assert len(ids) == len(set(ids)), "no row applied twice"
        with server.connect() as conn:
            (_, _, _, lag, _, error, _) = conn.execute("SHOW MATERIALIZED VIEWS").fetchone()[:7]
            assert lag == 0 and error is None
    finally:
        server.stop(signal.SIGKILL)


def test_union_all_of_several_tables_exactly_once_across_kill9(tmp_path):
    """A view over UNION ALL follows each table (each partition) with its own position."""
    server = Server(tmp_path / "data").start()
    union = "SELECT id, 'a' AS src FROM a WHERE id % 2 = 0 UNION ALL SELECT id, 'b' AS src FROM b UNION ALL SELECT id * 10, 'a10' FROM a"
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE a (id bigint) WITH (partitions = 2, key = 'id')")
            conn.execute("CREATE TABLE b (id bigint) WITH (partitions = 3, key = 'id')")
            conn.execute("INSERT INTO a SELECT x FROM generate_series(1, 1000) AS s(x)")
            conn.execute(f"CREATE MATERIALIZED VIEW both_tables AS {union}")
            conn.execute(f"CREATE MATERIALIZED VIEW per_src AS SELECT src, count(*) AS n, sum(id) AS total FROM ({union}) u GROUP BY src")
            conn.execute("INSERT INTO b SELECT x FROM generate_series(1, 500) AS s(x)")
            wait_equal(conn, "SELECT id, src FROM both_tables", union)
            wait_equal(conn, "SELECT src, n, total FROM per_src", f"SELECT src, count(*), sum(id) FROM ({union}) u GROUP BY src")
            shown = {r[1]: r for r in conn.execute("SHOW MATERIALIZED VIEWS").fetchall()}
            assert shown["both_tables"][2] == "public.a, public.b"
            with pytest.raises(psycopg.errors.DependentObjectsStillExist) as err:
                conn.execute("DROP TABLE b")
            assert "both_tables" in str(err.value) or "per_src" in str(err.value)
        next_id = 1001
        for _ in range(2):
            with server.connect() as conn:
                conn.execute(f"INSERT INTO a SELECT x FROM generate_series({next_id}, {next_id + 999}) AS s(x)")
                conn.execute(f"INSERT INTO b SELECT x FROM generate_series({next_id}, {next_id + 499}) AS s(x)")
            next_id += 1000
            server.kill9()  # right after the writes: the views are still applying them
            server.start()
            with server.connect() as conn:
                wait_equal(conn, "SELECT id, src FROM both_tables", union)
                wait_equal(conn, "SELECT src, n, total FROM per_src", f"SELECT src, count(*), sum(id) FROM ({union}) u GROUP BY src")
    finally:
        server.stop(signal.SIGKILL)


JOINED = ("SELECT o.id, c.name, o.amount FROM orders o JOIN customers c ON o.customer_id = c.id "
          "WHERE c.region = 'eu'")
JOINED_TOTALS = ("SELECT c.region, count(*) AS n, sum(o.amount) AS total FROM orders o "
                 "JOIN customers c ON o.customer_id = c.id GROUP BY c.region")


def test_inner_joins_of_two_streams_exactly_once_across_kill9(tmp_path):
    """Orders join customers whether the customer arrived before or after the order; the
    view (and an aggregation over the join) equals the batch query, also after kill -9."""
    server = Server(tmp_path / "data").start()
    rng = random.Random(7)
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE customers (id bigint, name text, region text) WITH (partitions = 2, key = 'id')")
            conn.execute("CREATE TABLE orders (id bigint, customer_id bigint, amount float8) WITH (partitions = 3, key = 'id')")
            conn.execute("INSERT INTO customers SELECT x, 'c' || x, CASE WHEN x % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 50) AS s(x)")
            conn.execute("INSERT INTO orders SELECT x, x % 80 + 1, x * 1.5 FROM generate_series(1, 400) AS s(x)")
            conn.execute(f"CREATE MATERIALIZED VIEW eu_orders AS {JOINED}")
            conn.execute(f"CREATE MATERIALIZED VIEW totals AS {JOINED_TOTALS}")
            wait_equal(conn, "SELECT * FROM eu_orders", JOINED)
            wait_equal(conn, "SELECT * FROM totals", JOINED_TOTALS)
        next_order, next_customer = 401, 51
        for _ in range(3):
            with server.connect() as conn:
                for _ in range(5):
                    # Customers 51.. arrive after orders that already name them.
                    conn.execute(f"INSERT INTO orders SELECT x, x % {next_customer + 20} + 1, x * 0.5 "
                                 f"FROM generate_series({next_order}, {next_order + 99}) AS s(x)")
                    conn.execute(f"INSERT INTO customers SELECT x, 'c' || x, CASE WHEN x % 3 = 0 THEN 'eu' ELSE 'ap' END "
                                 f"FROM generate_series({next_customer}, {next_customer + 4}) AS s(x)")
                    next_order, next_customer = next_order + 100, next_customer + 5
            time.sleep(rng.uniform(0, 0.05))
            server.kill9()  # while the views apply the writes
            server.start()
            with server.connect() as conn:
                wait_equal(conn, "SELECT * FROM eu_orders", JOINED)
                wait_equal(conn, "SELECT * FROM totals", JOINED_TOTALS)
    finally:
        server.stop(signal.SIGKILL)


@pytest.mark.parametrize("sql, words", [
    ("CREATE MATERIALIZED VIEW m AS SELECT o.id FROM orders o LEFT JOIN customers c ON o.customer_id = c.id", "left"),
    ("CREATE MATERIALIZED VIEW m AS SELECT a.id FROM orders a JOIN orders b ON a.id = b.customer_id", "twice"),
])
def test_joins_that_are_not_maintained_are_refused(server, sql, words):
    with server.connect() as conn:
        conn.execute("CREATE TABLE customers (id bigint, name text)")
        conn.execute("CREATE TABLE orders (id bigint, customer_id bigint)")
        with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
            conn.execute(sql)
        assert words in str(err.value).lower(), err.value
