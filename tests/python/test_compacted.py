"""Key-compacted tables (`WITH (key = …, cleanup = 'compact')`) over psycopg: SELECT reads
the latest row per key; materialized views joining a stream with such a table, or
aggregating it, follow its updates (a new row for a key replaces the old one) and equal
the same query run as a batch SELECT after each wave and across `kill -9`."""

import random
import signal

import pytest
from psycopg import errors as pg_errors

from conftest import Server, insert_until_killed
from test_materialized_aggregates import wait_equal

VIEWS = {
    # A stream enriched with the latest version of its dimension row.
    "enriched": "SELECT o.id, o.amount, c.name, c.country FROM orders o JOIN customers c ON o.customer = c.id",
    # Totals per country: an order counts where its customer lives now.
    "per_country": "SELECT c.country, sum(o.amount) AS total, count(*) AS n FROM orders o JOIN customers c "
                   "ON o.customer = c.id GROUP BY c.country",
    # The dimension itself, aggregated: customers per country.
    "census": "SELECT country, count(*) AS customers, max(name) AS last_name FROM customers GROUP BY country",
    # A filter of it: the rows leave when a customer moves away.
    "germans": "SELECT id, name FROM customers WHERE country = 'DE'",
}

COUNTRIES = ["DE", "FR", "IT", "ES"]


def update_customers(conn, count, ids):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO customers VALUES (%s, %s, %s)",
                        [(random.randrange(ids), f"name{random.randrange(1000)}", random.choice(COUNTRIES)) for _ in range(count)])


def add_orders(conn, first, count, ids):
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)",
                        [(i, random.randrange(ids + 5), random.randrange(1, 100)) for i in range(first, first + count)])


def test_select_reads_the_latest_row_per_key(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE customers (id int, name text, country text) WITH (key = 'id', cleanup = 'compact', partitions = 3)")
        conn.execute("INSERT INTO customers VALUES (1, 'Ann', 'DE'), (2, 'Bob', 'FR'), (3, 'Cy', 'IT')")
        conn.execute("INSERT INTO customers VALUES (1, 'Ann', 'FR'), (2, 'Bob', 'ES')")
        conn.execute("INSERT INTO customers VALUES (1, 'Anna', 'FR')")
        assert conn.execute("SELECT * FROM customers ORDER BY id").fetchall() == [
            (1, "Anna", "FR"), (2, "Bob", "ES"), (3, "Cy", "IT")]
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)
        assert conn.execute("SELECT country, count(*) FROM customers GROUP BY country ORDER BY 1").fetchall() == [
            ("ES", 1), ("FR", 1), ("IT", 1)]
        shown = {r[1]: r for r in conn.execute("SHOW TABLES").fetchall()}
        assert shown["customers"][-1] == "compact"
        # The system columns say which version is shown.
        offsets = dict(conn.execute("SELECT id, _offset FROM customers").fetchall())
        assert offsets[1] > 0
        with pytest.raises(pg_errors.InvalidParameterValue, match="key"):
            conn.execute("CREATE TABLE no_key (id int) WITH (cleanup = 'compact')")


def test_views_over_a_compacted_table_follow_its_updates(server):
    random.seed(3)
    with server.connect() as conn:
        conn.execute("CREATE TABLE customers (id int, name text, country text) WITH (key = 'id', cleanup = 'compact', partitions = 2)")
        conn.execute("CREATE TABLE orders (id int, customer int, amount int) WITH (partitions = 2)")
        update_customers(conn, 40, 20)
        add_orders(conn, 0, 50, 20)
        for name, sql in VIEWS.items():
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql}")
        for wave in range(5):
            for name, sql in VIEWS.items():
                assert wait_equal(conn, f"SELECT * FROM {name}", sql), name
            update_customers(conn, 15, 20 + wave * 3)
            add_orders(conn, 50 + wave * 30, 30, 20 + wave * 3)
        for name, sql in VIEWS.items():
            assert wait_equal(conn, f"SELECT * FROM {name}", sql), name


def test_exactly_once_across_kill9(tmp_path):
    random.seed(9)
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE customers (id int, name text, country text) WITH (key = 'id', cleanup = 'compact', partitions = 2)")
            # insert_until_killed writes events (id, tag); each event is an order of customer id % 30.
            conn.execute("CREATE TABLE events (id bigint, tag text) WITH (partitions = 2)")
            update_customers(conn, 60, 30)
            conn.execute("CREATE MATERIALIZED VIEW per_country AS SELECT c.country, count(*) AS n, sum(e.id) AS total "
                         "FROM events e JOIN customers c ON e.id % 30 = c.id GROUP BY c.country")
            conn.execute("CREATE MATERIALIZED VIEW germans AS SELECT id, name FROM customers WHERE country = 'DE'")
        next_id = 1
        for round_ in range(3):
            with server.connect() as conn:
                update_customers(conn, 20, 30)
            next_id = insert_until_killed(server, "events", next_id, f"r{round_}")
            with server.connect() as conn:
                update_customers(conn, 10, 30)
                assert wait_equal(conn, "SELECT * FROM per_country",
                                  "SELECT c.country, count(*) AS n, sum(e.id) AS total FROM events e JOIN customers c "
                                  "ON e.id % 30 = c.id GROUP BY c.country")
                assert wait_equal(conn, "SELECT * FROM germans", "SELECT id, name FROM customers WHERE country = 'DE'")
    finally:
        server.stop(signal.SIGKILL)
