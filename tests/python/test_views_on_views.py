"""Materialized views over aggregating materialized views, over psycopg: the inner view's
rows change (update_before/update_after pairs, deletes when HAVING hides a group), and
the outer aggregation follows them — every aggregate, MIN and MAX included, groups
appearing and disappearing — compared with the nested query run as a batch SELECT (the
oracle) after each wave of rows, and across `kill -9` during maintenance."""

import random
import signal

import psycopg
import pytest
from psycopg import errors as pg_errors

from conftest import Server, insert_until_killed
from test_materialized_aggregates import wait_equal

# Per auction: its highest bid, while it has fewer than 6 bids (then HAVING deletes it).
INNER = ("SELECT auction, category, max(price) AS final, count(*) AS bids FROM bids "
         "GROUP BY auction, category HAVING count(*) < 6")
OUTER = ("SELECT category, count(*) AS auctions, sum(final) AS total, avg(final) AS mean, "
         "min(final) AS low, max(final) AS high, count(DISTINCT final) AS prices, max(bids) AS most_bids FROM {} "
         "GROUP BY category")
WHOLE = "SELECT count(*) AS auctions, sum(final) AS total, max(final) AS high FROM {}"


def insert_wave(conn, start, count, auctions):
    rows = [(random.randrange(auctions), (i * 7919) % 1000, (i * 31) % 5) for i in range(start, start + count)]
    with conn.cursor() as cur:
        # An auction's category is fixed by its number, whatever the bid says.
        cur.executemany("INSERT INTO bids VALUES (%s, %s, %s %% 4)", [(a, p, a) for a, p, _ in rows])


def test_aggregates_over_an_aggregating_view_equal_the_nested_query(server):
    random.seed(7)
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int) WITH (partitions = 2)")
        insert_wave(conn, 0, 300, 60)
        conn.execute(f"CREATE MATERIALIZED VIEW finals AS {INNER}")
        conn.execute(f"CREATE MATERIALIZED VIEW per_category AS {OUTER.format('finals')}")
        conn.execute(f"CREATE MATERIALIZED VIEW overall AS {WHOLE.format('finals')}")
        outer_batch = OUTER.format(f"({INNER}) q")
        whole_batch = WHOLE.format(f"({INNER}) q")
        for wave in range(6):
            wait_equal(conn, "SELECT * FROM per_category", outer_batch)
            wait_equal(conn, "SELECT * FROM overall", whole_batch)
            # New auctions, and more bids on old ones (raising maxima, crossing HAVING).
            insert_wave(conn, 300 + wave * 200, 200, 60 + wave * 10)
        rows = wait_equal(conn, "SELECT * FROM per_category", outer_batch)
        assert len(rows) == 4
        wait_equal(conn, "SELECT * FROM overall", whole_batch)


def test_a_group_whose_rows_all_leave_is_deleted(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int)")
        conn.execute("INSERT INTO bids VALUES (1, 10, 7), (2, 20, 8)")
        conn.execute("CREATE MATERIALIZED VIEW open_auctions AS SELECT auction, category, max(price) AS top "
                     "FROM bids GROUP BY auction, category HAVING count(*) < 3")
        conn.execute("CREATE MATERIALIZED VIEW per_category AS SELECT category, count(*) AS n, max(top) AS top "
                     "FROM open_auctions GROUP BY category")
        conn.execute("CREATE MATERIALIZED VIEW total AS SELECT count(*) AS n, max(top) AS top FROM open_auctions")
        wait_equal(conn, "SELECT * FROM per_category", "VALUES (7, 1::bigint, 10), (8, 1::bigint, 20)")
        # Auction 2 gets its third bid: it leaves the inner view, and category 8 with it.
        conn.execute("INSERT INTO bids VALUES (2, 30, 8), (2, 40, 8)")
        wait_equal(conn, "SELECT * FROM per_category", "VALUES (7, 1::bigint, 10)")
        wait_equal(conn, "SELECT * FROM total", "VALUES (1::bigint, 10)")
        conn.execute("INSERT INTO bids VALUES (1, 50, 7), (1, 60, 7)")
        wait_equal(conn, "SELECT * FROM per_category", "SELECT 1 AS c, 1::bigint AS n, 1 AS t WHERE false")
        # Without GROUP BY there is still one row: the aggregates of nothing.
        wait_equal(conn, "SELECT * FROM total", "VALUES (0::bigint, NULL::int)")
        conn.execute("INSERT INTO bids VALUES (3, 5, 7)")
        wait_equal(conn, "SELECT * FROM per_category", "VALUES (7, 1::bigint, 5)")


def test_the_outer_change_log_folds_to_its_result(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int)")
        conn.execute("CREATE MATERIALIZED VIEW finals AS SELECT auction, category, max(price) AS final FROM bids GROUP BY auction, category")
        conn.execute("CREATE MATERIALIZED VIEW per_category AS SELECT category, max(final) AS high, count(*) AS n FROM finals GROUP BY category")
        conn.execute("INSERT INTO bids VALUES (1, 10, 1), (2, 15, 1)")
        wait_equal(conn, "SELECT * FROM per_category", "VALUES (1, 15, 2::bigint)")
        conn.execute("INSERT INTO bids VALUES (1, 20, 1)")
        wait_equal(conn, "SELECT * FROM per_category", "VALUES (1, 20, 2::bigint)")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("DECLARE c CURSOR FOR SUBSCRIBE per_category FROM EARLIEST")
            changes = cur.execute("FETCH 10 FROM c WITH (timeout = '1s')").fetchall()
            names = [d.name for d in cur.description]
        at = {n: i for i, n in enumerate(names)}
        log = [(r[at["category"]], r[at["high"]], r[at["n"]], r[at["_change"]]) for r in changes]
        assert log == [(1, 10, 1, "insert"), (1, 10, 1, "update_before"), (1, 15, 2, "update_after"),
                       (1, 15, 2, "update_before"), (1, 20, 2, "update_after")] \
            or log == [(1, 15, 2, "insert"), (1, 15, 2, "update_before"), (1, 20, 2, "update_after")], log


OPEN = "SELECT auction, category, max(price) AS final FROM bids GROUP BY auction, category HAVING count(*) < 4"
ROW_VIEWS = {
    # A filter and a projection of a changing view.
    "hot": ("SELECT auction, final * 2 AS doubled FROM open_auctions WHERE final > 500",
            f"SELECT auction, final * 2 AS doubled FROM ({OPEN}) o WHERE final > 500"),
    # A join of a changing view with a table.
    "named": ("SELECT o.auction, o.final, n.name FROM open_auctions o JOIN names n ON o.auction = n.id",
              f"SELECT o.auction, o.final, n.name FROM ({OPEN}) o JOIN names n ON o.auction = n.id"),
    # A join of two changing views (as Nexmark q5 and q7: the rows at their group's maximum).
    "leaders": ("SELECT o.auction, o.category, o.final FROM open_auctions o JOIN best b "
                "ON o.category = b.category AND o.final >= b.top",
                f"SELECT o.auction, o.category, o.final FROM ({OPEN}) o JOIN "
                f"(SELECT category, max(final) AS top FROM ({OPEN}) i GROUP BY category) b "
                "ON o.category = b.category AND o.final >= b.top"),
    # An aggregation over a changing view of rows.
    "hot_count": ("SELECT count(*) AS n, sum(doubled) AS total FROM hot",
                  f"SELECT count(*) AS n, sum(final * 2) AS total FROM ({OPEN}) o WHERE final > 500"),
}


def test_filters_projections_and_joins_over_changing_views_follow_them(server):
    random.seed(11)
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int) WITH (partitions = 2)")
        conn.execute("CREATE TABLE names (id int, name text)")
        conn.execute("INSERT INTO names SELECT x, 'auction ' || x FROM generate_series(0, 40) AS s(x)")
        insert_wave(conn, 0, 100, 30)
        conn.execute(f"CREATE MATERIALIZED VIEW open_auctions AS {OPEN}")
        conn.execute("CREATE MATERIALIZED VIEW best AS SELECT category, max(final) AS top FROM open_auctions GROUP BY category")
        for name, (sql, _) in ROW_VIEWS.items():
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql}")
        for wave in range(5):
            for name, (_, batch) in ROW_VIEWS.items():
                wait_equal(conn, f"SELECT * FROM {name}", batch)
            insert_wave(conn, 100 + wave * 60, 60, 30 + wave * 3)
            conn.execute(f"INSERT INTO names VALUES ({41 + wave}, 'late {wave}')")
        for name, (_, batch) in ROW_VIEWS.items():
            assert wait_equal(conn, f"SELECT * FROM {name}", batch), name
        # The join's change log folds to its result: rows came and went as maxima moved
        # and auctions closed.
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("DECLARE c CURSOR FOR SUBSCRIBE leaders FROM EARLIEST")
            log = cur.execute("FETCH 100000 FROM c WITH (timeout = '1s')").fetchall()
            at = {d.name: i for i, d in enumerate(cur.description)}
        folded = {}
        for r in log:
            row = (r[at["auction"]], r[at["category"]], r[at["final"]])
            folded[row] = folded.get(row, 0) + (1 if r[at["_change"]] == "insert" else -1)
        assert {r[at["_change"]] for r in log} == {"insert", "delete"}
        current = sorted(r for r, n in folded.items() for _ in range(n))
        assert current == sorted(conn.execute("SELECT * FROM leaders").fetchall())


def test_exactly_once_across_kill9_during_maintenance(tmp_path):
    server = Server(tmp_path / "data").start()
    inner = "SELECT id % 300 AS item, max(id) AS top, count(*) AS n FROM events GROUP BY id % 300 HAVING max(id) % 3 <> 0"
    outer = "SELECT item % 10 AS shelf, count(*) AS items, sum(top) AS tops, min(n) AS fewest, max(n) AS most FROM {} GROUP BY item % 10"
    batch = outer.format(f"({inner}) q")
    # A join of two changing views: each item with its shelf's count, where it is the top.
    joined = "SELECT i.item, i.top, s.items FROM {i} i JOIN {s} s ON i.item % 10 = s.shelf AND i.n = s.most"
    joined_batch = joined.format(i=f"({inner})", s=f"({batch})")
    # An aggregation over that join (its input rows are recovered as the join of both sides).
    counted = "SELECT s.shelf, count(*) AS n, max(i.top) AS top FROM {i} i JOIN {s} s ON i.item % 10 = s.shelf AND i.top > s.tops / s.items GROUP BY s.shelf"
    counted_batch = counted.format(i=f"({inner})", s=f"({batch})")
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE events (id bigint, tag text) WITH (partitions = 3, key = 'id')")
            conn.execute("INSERT INTO events SELECT x, 'old' FROM generate_series(1, 5000) AS s(x)")
            conn.execute(f"CREATE MATERIALIZED VIEW items AS {inner}")
            conn.execute(f"CREATE MATERIALIZED VIEW shelves AS {outer.format('items')}")
            conn.execute(f"CREATE MATERIALIZED VIEW fullest AS {joined.format(i='items', s='shelves')}")
            conn.execute(f"CREATE MATERIALIZED VIEW tops_per_shelf AS {counted.format(i='items', s='shelves')}")
        next_id = 5001
        for round_ in range(3):
            next_id = insert_until_killed(server, "events", next_id, f"r{round_}")
            with server.connect() as conn:
                rows = wait_equal(conn, "SELECT * FROM shelves", batch)
                assert len(rows) == 10
                assert wait_equal(conn, "SELECT * FROM fullest", joined_batch)
                assert wait_equal(conn, "SELECT * FROM tops_per_shelf", counted_batch)
        with server.connect() as conn:
            for row in conn.execute("SHOW MATERIALIZED VIEWS").fetchall():
                assert row[3] == 0 and row[5] is None, row
    finally:
        server.stop(signal.SIGKILL)


NESTED = {
    # Nexmark q4's shape: an aggregation over an aggregation of a join.
    "per_category": "SELECT q.category, avg(q.final) AS mean, count(*) AS n FROM ("
                    "SELECT b.auction, n.name AS category, max(b.price) AS final FROM bids b JOIN names n ON b.auction % 5 = n.id "
                    "GROUP BY b.auction, n.name) q GROUP BY q.category",
    # Nexmark q7's shape: rows joined with their group's maximum.
    "top_bids": "SELECT b.auction, b.price FROM bids b JOIN ("
                "SELECT category, max(price) AS top FROM bids GROUP BY category) m "
                "ON b.category = m.category AND b.price = m.top",
    # Nexmark q5's shape: one aggregation joined with an aggregation of the same one.
    "busiest": "SELECT c.auction, c.n FROM (SELECT auction, count(*) AS n FROM bids GROUP BY auction) c JOIN ("
               "SELECT max(k.n) AS most FROM (SELECT auction, count(*) AS n FROM bids GROUP BY auction) k) m ON c.n >= m.most",
}


def test_nested_aggregations_in_one_view_are_maintained_as_views_over_views(server):
    random.seed(5)
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int)")
        conn.execute("CREATE TABLE names (id int, name text)")
        conn.execute("INSERT INTO names SELECT x, 'c' || (x % 3) FROM generate_series(0, 4) AS s(x)")
        insert_wave(conn, 0, 100, 20)
        for name, sql in NESTED.items():
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql}")
        for wave in range(4):
            for name, sql in NESTED.items():
                assert wait_equal(conn, f"SELECT * FROM {name}", sql), name
            insert_wave(conn, 100 + wave * 50, 50, 20 + wave * 5)
        views = {r[1]: r for r in conn.execute("SHOW MATERIALIZED VIEWS").fetchall()}
        # Each aggregating subquery is a view of its own, read by the view.
        # The subquery busiest reads twice is one part.
        assert {n for n in views if "_part" in n} == {"per_category_part1", "top_bids_part1", "busiest_part1", "busiest_part2"}
        assert views["busiest"][2] == "public.busiest_part1, public.busiest_part2"
        assert views["busiest_part2"][2] == "public.busiest_part1"
        with pytest.raises(pg_errors.DependentObjectsStillExist, match="busiest"):
            conn.execute("DROP MATERIALIZED VIEW busiest_part1")
        conn.rollback()
        for name in NESTED:
            conn.execute(f"DROP MATERIALIZED VIEW {name}")
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []
        # A query still refused after its subqueries became views leaves none behind.
        with pytest.raises(pg_errors.FeatureNotSupported, match="Sort"):
            conn.execute("CREATE MATERIALIZED VIEW bad AS SELECT n FROM (SELECT auction, count(*) AS n FROM bids GROUP BY auction) c ORDER BY n")
        conn.rollback()
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []


@pytest.mark.parametrize("sql", [
    "SELECT auction, final FROM finals WHERE final > random() * 10",
    "SELECT category, count(*) FROM finals WHERE now() > '2020-01-01' GROUP BY category",
])
def test_functions_whose_value_changes_are_refused_over_a_changing_view(server, sql):
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int)")
        conn.execute("CREATE MATERIALIZED VIEW finals AS SELECT auction, category, max(price) AS final FROM bids GROUP BY auction, category")
        with pytest.raises(pg_errors.FeatureNotSupported, match=r"random\(\)|now\(\)"):
            conn.execute(f"CREATE MATERIALIZED VIEW bad AS {sql}")


@pytest.mark.parametrize("sql, words", [
    ("SELECT category, moving_avg(final, 3) FROM finals GROUP BY category", "moving_avg"),
    ("SELECT category, first_value(final) FROM finals GROUP BY category", "first_value"),
    ("SELECT f.category, r.t FROM finals f JOIN readings r ON f.category = r.v", "watermark"),
])
def test_what_depends_on_arrival_order_or_lateness_is_refused_over_a_changing_view(server, sql, words):
    with server.connect() as conn:
        conn.execute("CREATE TABLE bids (auction int, price int, category int)")
        conn.execute("CREATE TABLE readings (v int, t timestamptz, WATERMARK FOR t AS t - INTERVAL '1 second')")
        conn.execute("CREATE MATERIALIZED VIEW finals AS SELECT auction, category, max(price) AS final FROM bids GROUP BY auction, category")
        with pytest.raises(pg_errors.FeatureNotSupported, match=words):
            conn.execute(f"CREATE MATERIALIZED VIEW bad AS {sql}")
        conn.rollback()
        # first_value with ORDER BY does not depend on arrival: maintained.
        conn.execute("CREATE MATERIALIZED VIEW ok AS SELECT category, first_value(final ORDER BY auction) AS f FROM finals GROUP BY category")
        conn.execute("INSERT INTO bids VALUES (2, 5, 1), (1, 7, 1), (1, 9, 1)")
        wait_equal(conn, "SELECT * FROM ok", "VALUES (1, 9)")


def test_parts_are_quoted_named_and_guarded(server):
    with server.connect() as conn:
        conn.execute('CREATE SCHEMA "Sales"')
        conn.execute('CREATE TABLE "Sales".bids (auction int, price int)')
        conn.execute('INSERT INTO "Sales".bids VALUES (1, 10), (1, 20), (2, 5)')
        # An unaliased aggregate in a subquery keeps the name the query reads it by.
        conn.execute('CREATE MATERIALIZED VIEW "Sales"."Top" AS SELECT max(q."count(*)") AS most FROM '
                     '(SELECT auction, count(*) FROM "Sales".bids GROUP BY auction) q')
        wait_equal(conn, 'SELECT * FROM "Sales"."Top"', "VALUES (2::bigint)")
        conn.execute('CREATE VIEW "Sales".peek AS SELECT * FROM "Sales"."Top_part1"')
        with pytest.raises(pg_errors.DependentObjectsStillExist, match="peek"):
            conn.execute('DROP MATERIALIZED VIEW "Sales"."Top"')
        conn.rollback()
        # Nothing was dropped by the refused DROP.
        assert wait_equal(conn, 'SELECT * FROM "Sales"."Top"', "VALUES (2::bigint)")
        conn.execute('DROP MATERIALIZED VIEW "Sales"."Top" CASCADE')
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []
        # A query with a CTE is not split (a subquery alone would read the table, not the CTE).
        with pytest.raises(pg_errors.FeatureNotSupported):
            conn.execute('CREATE MATERIALIZED VIEW "Sales".c AS WITH bids AS (SELECT * FROM "Sales".bids WHERE price > 6) '
                         'SELECT count(*) FROM (SELECT auction, count(*) FROM bids GROUP BY auction) q')
        conn.rollback()
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []


def test_a_cancelled_create_leaves_no_parts_behind(server):
    import threading
    import time
    with server.connect() as conn:
        conn.execute("CREATE TABLE big (k bigint, v bigint) WITH (partitions = 2)")
        conn.execute("INSERT INTO big SELECT x % 1000, x FROM generate_series(1, 3000000) AS s(x)")
        # The part's backfill (3 M rows) is under way when the statement is cancelled.
        threading.Timer(0.3, conn.cancel).start()
        started = time.time()
        with pytest.raises(pg_errors.QueryCanceled):
            conn.execute("CREATE MATERIALIZED VIEW slow AS SELECT max(q.n) FROM "
                         "(SELECT k, count(DISTINCT v) AS n FROM big GROUP BY k) q")
        conn.rollback()
        assert time.time() - started < 30
        deadline = time.time() + 10
        while conn.execute("SHOW MATERIALIZED VIEWS").fetchall() and time.time() < deadline:
            time.sleep(0.1)
        assert conn.execute("SHOW MATERIALIZED VIEWS").fetchall() == []


def test_a_view_over_an_emit_on_window_close_view_reads_its_final_rows(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE readings (sensor text, temp float8, at timestamptz, "
                     "WATERMARK FOR at AS at - INTERVAL '1 second')")
        conn.execute("CREATE MATERIALIZED VIEW per_minute AS SELECT window_end, sensor, max(temp) AS top "
                     "FROM TUMBLE(readings, at, INTERVAL '1 minute') GROUP BY window_end, sensor EMIT ON WINDOW CLOSE")
        conn.execute("CREATE MATERIALIZED VIEW hot_minutes AS SELECT sensor, count(*) AS minutes, max(top) AS top "
                     "FROM per_minute WHERE top > 20 GROUP BY sensor")
        conn.execute("INSERT INTO readings VALUES ('a', 25, '2026-01-01 00:00:10+00'), ('b', 10, '2026-01-01 00:00:20+00'), "
                     "('a', 30, '2026-01-01 00:01:10+00'), ('b', 22, '2026-01-01 00:01:20+00')")
        # The first minute is closed (the watermark passed 00:01:00); the second is open.
        wait_equal(conn, "SELECT * FROM hot_minutes", "VALUES ('a', 1::bigint, 25.0::float8)")
        conn.execute("INSERT INTO readings VALUES ('a', 1, '2026-01-01 00:02:30+00')")
        wait_equal(conn, "SELECT * FROM hot_minutes ORDER BY sensor", "VALUES ('a', 2::bigint, 30.0::float8), ('b', 1::bigint, 22.0::float8)")
