#!/usr/bin/env python3
"""Nexmark on StreamHouse: the person / auction / bid streams from the `nexmark` crate's
generator (installed by bench/nexmark), the Nexmark queries as materialized views, each
checked against the same query run as a batch SELECT, and their throughput.

  bench/nexmark                  # 1 M events to backfill, then 500 K more applied live
  bench/nexmark --events 2000000 --live-events 1000000

For each query: CREATE MATERIALIZED VIEW over the events already stored (the backfill)
and the events it read per second and per second of server CPU (the machine has 2
cores; per-core figures are events / CPU-seconds). Then all views together while more
events are written: events/s until every view has caught up. Then each view alone while
new events are written, against writing them with no view (the streaming figure per
query). Queries StreamHouse cannot maintain incrementally yet are listed with the
server's refusal (SQLSTATE 0A000).
Durability: --durability fsync."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the same server harness as bench/run)
from run import StreamHouse  # noqa: E402


def cpu_seconds(pid):
    """User + system CPU seconds the server has used."""
    return sum(run.cpu_seconds(pid).values())

GENERATOR = os.environ.get("NEXMARK_BIN", str(Path.home() / ".cache/streamhouse/nexmark/bin/nexmark"))

TABLES = {
    "person": ("id BIGINT, name TEXT, email_address TEXT, credit_card TEXT, city TEXT, state TEXT, date_time TIMESTAMPTZ, extra TEXT",
               ["id", "name", "email_address", "credit_card", "city", "state", "date_time", "extra"]),
    "auction": ("id BIGINT, item_name TEXT, description TEXT, initial_bid BIGINT, reserve BIGINT, date_time TIMESTAMPTZ, "
                "expires TIMESTAMPTZ, seller BIGINT, category BIGINT, extra TEXT",
                ["id", "item_name", "description", "initial_bid", "reserve", "date_time", "expires", "seller", "category", "extra"]),
    "bid": ("auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMPTZ, extra TEXT",
            ["auction", "bidder", "price", "channel", "url", "date_time", "extra"]),
}
TIME_FIELDS = {"date_time", "expires"}

# The Nexmark queries as RisingWave's and Arroyo's suites write them for SQL engines.
QUERIES = {
    "q0": ("bid", "SELECT auction, bidder, price, date_time FROM bid"),
    "q1": ("bid", "SELECT auction, bidder, 0.908 * price AS price, date_time FROM bid"),
    "q2": ("bid", "SELECT auction, price FROM bid WHERE auction % 123 = 0"),
    "q3": ("person,auction", "SELECT p.name, p.city, p.state, a.id FROM auction a JOIN person p ON a.seller = p.id "
                             "WHERE a.category = 10 AND (p.state = 'or' OR p.state = 'id' OR p.state = 'ca')"),
    "q4": ("auction,bid", "SELECT q.category, avg(q.final) AS avg_price FROM ("
                          "SELECT max(b.price) AS final, a.category FROM auction a JOIN bid b ON a.id = b.auction "
                          "WHERE b.date_time BETWEEN a.date_time AND a.expires GROUP BY a.id, a.category) q GROUP BY q.category"),
    "q5": ("bid", "SELECT ab.auction, ab.num FROM ("
                  "SELECT auction, count(*) AS num, window_start AS starttime FROM "
                  "HOP(bid, date_time, INTERVAL '2 seconds', INTERVAL '10 seconds') GROUP BY window_start, auction) ab JOIN ("
                  "SELECT max(cb.num) AS maxn, cb.starttime FROM (SELECT count(*) AS num, window_start AS starttime FROM "
                  "HOP(bid, date_time, INTERVAL '2 seconds', INTERVAL '10 seconds') GROUP BY auction, window_start) cb "
                  "GROUP BY cb.starttime) mb ON ab.starttime = mb.starttime AND ab.num >= mb.maxn"),
    "q7": ("bid", "SELECT b.auction, b.price, b.bidder, b.date_time FROM bid b JOIN ("
                  "SELECT max(price) AS maxprice, window_end FROM TUMBLE(bid, date_time, INTERVAL '10 seconds') GROUP BY window_end) m "
                  "ON b.price = m.maxprice AND b.date_time BETWEEN m.window_end - INTERVAL '10 seconds' AND m.window_end"),
    "q8": ("person,auction", "SELECT p.id, p.name, p.window_start FROM ("
                             "SELECT id, name, window_start, window_end FROM TUMBLE(person, date_time, INTERVAL '10 seconds') "
                             "GROUP BY id, name, window_start, window_end) p JOIN ("
                             "SELECT seller, window_start, window_end FROM TUMBLE(auction, date_time, INTERVAL '10 seconds') "
                             "GROUP BY seller, window_start, window_end) a ON p.id = a.seller AND p.window_start = a.window_start "
                             "AND p.window_end = a.window_end"),
}

def events_copy_text(first, count):
    """`count` events from event number `first`, as COPY text per table."""
    out = subprocess.run([GENERATOR, "-n", str(count), "--offset", str(first), "--no-wait"],
                         capture_output=True, check=True).stdout.splitlines()
    lines = {t: [] for t in TABLES}
    for raw in out:
        (kind, fields), = json.loads(raw).items()
        table = kind.lower()
        values = []
        for name in TABLES[table][1]:
            v = fields[name]
            if name in TIME_FIELDS:
                v = datetime.fromtimestamp(v / 1000, tz=timezone.utc).isoformat(sep=" ")
            values.append(str(v))
        lines[table].append("\t".join(values))
    return {t: ("\n".join(rows) + "\n").encode() if rows else b"" for t, rows in lines.items()}, len(out)


def load(conn, text):
    for table, data in text.items():
        if data:
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as cp:
                cp.write(data)


def source_rows(conn, sources):
    return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sources.split(","))


def same_result(conn, name, query):
    """The view equals the batch query (compared in full, sorted)."""
    key = lambda r: tuple((v is None, str(v)) for v in r)
    got = sorted(conn.execute(f"SELECT * FROM {name}").fetchall(), key=key)
    want = sorted(conn.execute(query).fetchall(), key=key)
    return got == want, len(got)


def wait_caught_up(conn, deadline_s=600):
    deadline = time.time() + deadline_s
    while True:
        rows = conn.execute("SHOW MATERIALIZED VIEWS").fetchall()
        if all(r[3] == 0 for r in rows):
            return
        if time.time() > deadline:
            sys.exit(f"views did not catch up: {rows}")
        time.sleep(0.01)


def live_each(conn, db, maintained, offset, count):
    """Each view alone: `count` new events written (COPY, fsync) while only it is
    maintained, until it has caught up; the server's CPU against writing as many events
    with no view at all, measured first in the same run."""
    for name in maintained:
        conn.execute(f"DROP MATERIALIZED VIEW {name}")
    print(f"\nlive, one view at a time: {count:,} new events each (COPY, fsync), until the view has caught up")
    print(f"{'query':<6}{'wall s':>8}{'events/s':>12}{'events/CPU-s':>14}{'events/view-CPU-s':>19}  (view CPU = CPU - ingest's)")
    ingest_cpu_per_event = None
    # Ingest alone twice (the first COPY into fresh segments costs more): the cheaper counts.
    for name in [None, None] + maintained:
        if name is not None:
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {QUERIES[name][1]}")
        text, generated = events_copy_text(offset, count)
        offset += generated
        cpu0, t0 = cpu_seconds(db.pid), time.perf_counter()
        load(conn, text)
        wait_caught_up(conn)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(db.pid) - cpu0
        if name is None:
            ingest_cpu_per_event = min(cpu / generated, ingest_cpu_per_event or float("inf"))
            print(f"{'ingest':<6}{elapsed:>8.3f}{generated / elapsed:>12,.0f}{generated / max(cpu, 1e-9):>14,.0f}{'—':>19}  no view")
            continue
        if not same_result(conn, name, QUERIES[name][1])[0]:
            sys.exit(f"{name}: the view differs from the batch query after the live events")
        view_cpu = cpu - ingest_cpu_per_event * generated
        per_view_cpu = f"{generated / view_cpu:,.0f}" if view_cpu > 0.01 else "(< 0.01 s)"
        print(f"{name:<6}{elapsed:>8.3f}{generated / elapsed:>12,.0f}{generated / max(cpu, 1e-9):>14,.0f}{per_view_cpu:>19}  = batch query")
        conn.execute(f"DROP MATERIALIZED VIEW {name}")
    return offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="events stored before the views are created")
    ap.add_argument("--live-events", type=int, default=500_000, help="events written while all views are maintained")
    ap.add_argument("--live-each", type=int, default=200_000, help="events written while one view at a time is maintained")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamhouse-nexmark-") as tmp:
        db = StreamHouse(tmp)
        try:
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                for table, (columns, _) in TABLES.items():
                    conn.execute(f"CREATE TABLE {table} ({columns}) WITH (partitions = 2)")
                text, generated = events_copy_text(0, args.events)
                load(conn, text)
                print(f"Nexmark: {generated:,} events stored ({', '.join(f'{t} {source_rows(conn, t):,}' for t in TABLES)}); "
                      f"StreamHouse, {os.cpu_count()} cores, fsync\n")
                print(f"{'query':<6}{'backfill s':>11}{'events/s':>13}{'events/CPU-s':>14}  result")
                maintained = []
                for name, (sources, query) in QUERIES.items():
                    rows_in = source_rows(conn, sources)
                    cpu0, t0 = cpu_seconds(db.pid), time.perf_counter()
                    try:
                        conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {query}")
                    except psycopg.Error as e:
                        print(f"{name:<6}{'—':>11}{'—':>13}{'—':>14}  not maintained yet ({e.sqlstate}): {str(e).splitlines()[0]}")
                        continue
                    elapsed, cpu = time.perf_counter() - t0, cpu_seconds(db.pid) - cpu0
                    equal, count = same_result(conn, name, query)
                    if not equal:
                        sys.exit(f"{name}: the view differs from the batch query")
                    maintained.append(name)
                    # Aggregating subqueries are maintained as views of their own (parts).
                    parts = sum(r[1].startswith(f"{name}_part") for r in conn.execute("SHOW MATERIALIZED VIEWS").fetchall())
                    staged = f" (+{parts} part views: its aggregating subqueries)" if parts else ""
                    print(f"{name:<6}{elapsed:>11.3f}{rows_in / elapsed:>13,.0f}{rows_in / max(cpu, 1e-9):>14,.0f}  "
                          f"{count:,} rows = batch query{staged}")
                text, live = events_copy_text(args.events, args.live_events)
                cpu0, t0 = cpu_seconds(db.pid), time.perf_counter()
                load(conn, text)
                wait_caught_up(conn)
                elapsed, cpu = time.perf_counter() - t0, cpu_seconds(db.pid) - cpu0
                for name in maintained:
                    if not same_result(conn, name, QUERIES[name][1])[0]:
                        sys.exit(f"{name}: the view differs from the batch query after the live events")
                print(f"\nlive: {live:,} events written (COPY, fsync) and applied by {', '.join(maintained)}: "
                      f"{elapsed:.3f} s, {live / elapsed:,.0f} events/s, {live / max(cpu, 1e-9):,.0f} events/CPU-s "
                      f"(ingest included); every view equals its batch query")
                live_each(conn, db, maintained, args.events + args.live_events, args.live_each)
                print("\nreference (per core, from the issue): RisingWave q5 ~5 K, q7 ~20 K events/s; Flink q5 ~22 K")
        finally:
            db.stop()


if __name__ == "__main__":
    main()
