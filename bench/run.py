#!/usr/bin/env python3
"""StreamHouse benchmark, with PostgreSQL 15 on the same machine measured in the same run,
the same client and the same data, so every figure is also a ratio.

  bench/run                      # defaults: 2 M rows COPY, 10 s of INSERTs, 10 M rows GROUP BY, 10 M rows Flight
  bench/run --rows 1000000 --scan-rows 2000000 --insert-seconds 5

Prints rows/s, latency percentiles and peak server memory (VmHWM). Durability: StreamHouse
runs with --durability fsync, PostgreSQL with fsync=on and synchronous_commit=on."""

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("STREAMHOUSE_BIN", str(Path.home() / ".cache/streamhouse/target/release/streamhouse"))
REGIONS = ["eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"]
COPY_CHUNK_ROWS = 500_000
TABLE_SQL = "CREATE TABLE bench (id BIGINT NOT NULL, region TEXT, x DOUBLE PRECISION, payload TEXT)"


def rows_text(start, n, rng):
    """~100-byte rows in COPY text format."""
    out = io.StringIO()
    pad = "p" * 48
    for i in range(start, start + n):
        out.write(f"{i}\t{REGIONS[i % len(REGIONS)]}\t{rng.random() * 1000:.6f}\t{pad}{i:012d}\n")
    return out.getvalue().encode()


class StreamHouse:
    name = "streamhouse"

    def __init__(self, tmp):
        self.data = Path(tmp) / "sh"
        (self.data / "listeners.json").unlink(missing_ok=True)  # from a previous start
        self.proc = subprocess.Popen(
            [BIN, "--data-dir", str(self.data), "--pg-addr", "127.0.0.1:0", "--flight-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
             "--durability", "fsync"],
            stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "sh.log", "wb"))
        deadline = time.time() + 60
        while not (self.data / "listeners.json").exists():
            if time.time() > deadline or self.proc.poll() is not None:
                sys.exit("streamhouse did not start; see " + str(Path(tmp) / "sh.log"))
            time.sleep(0.05)
        listeners = json.loads((self.data / "listeners.json").read_text())
        host, port = listeners["pg"].rsplit(":", 1)
        self.kafka_addr = listeners["kafka"]
        self.dsn = f"host={host} port={port} user=bench dbname=streamhouse"
        self.pid = self.proc.pid

    def create(self, conn):
        conn.execute(TABLE_SQL + " WITH (partitions = 4)")

    def newest_table_id(self):
        """Id of the most recently created table that has segments (tables are numbered in
        creation order; their segments live under segments/tables/{id}/)."""
        return max(int(p.name) for p in (self.data / "segments" / "tables").iterdir() if p.name.isdigit())

    def parquet_glob(self, table_id):
        return str(self.data / "segments" / "tables" / str(table_id) / "*" / "*.parquet")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


class Postgres:
    name = "postgresql"

    def __init__(self, tmp):
        self.dir = Path(tmp) / "pg"
        self.dir.mkdir()
        env = dict(os.environ, PGTMP_DURABLE="1")
        url = subprocess.run([str(ROOT / "scripts/pg-tmp"), "start", str(self.dir)], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        self.dsn = url
        with psycopg.connect(url, autocommit=True) as c:
            self.pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
            settings = c.execute("SELECT current_setting('fsync'), current_setting('synchronous_commit')").fetchone()
            assert settings == ("on", "on"), f"PostgreSQL must run durable for a fair comparison, got {settings}"
        self.postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])

    def create(self, conn):
        conn.execute(TABLE_SQL)

    def stop(self):
        subprocess.run([str(ROOT / "scripts/pg-tmp"), "stop", str(self.dir)], capture_output=True)


def peak_rss_mib(pid):
    """Peak resident memory of a process (and, for PostgreSQL, its children)."""
    return memory_mib(pid, "VmHWM:")


def memory_mib(pid, field):
    """A /proc/PID/status memory field (VmHWM:, VmRSS:) of a process and its children, MiB."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith(field):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def bench_copy(db, rows, seed, passes=1):
    """Loads `rows` rows into a fresh table `passes` times; rows/s and MB/s of the median pass
    (one pass alone swings by ±25% run to run on this machine, for both servers), and the
    rows/s of every pass."""
    rng = random.Random(seed)
    chunks = [rows_text(s, min(COPY_CHUNK_ROWS, rows - s), rng) for s in range(0, rows, COPY_CHUNK_ROWS)]
    times = []
    with psycopg.connect(db.dsn, autocommit=True) as c:
        for _ in range(passes):
            c.execute("DROP TABLE IF EXISTS bench")
            db.create(c)
            t0 = time.perf_counter()
            for chunk in chunks:
                with c.cursor().copy("COPY bench FROM STDIN") as cp:
                    for i in range(0, len(chunk), 1 << 20):
                        cp.write(chunk[i:i + (1 << 20)])
            times.append(time.perf_counter() - t0)
            assert c.execute("SELECT count(*) FROM bench").fetchone()[0] == rows
    elapsed = statistics.median(times)
    return rows / elapsed, sum(len(c) for c in chunks) / elapsed / 1e6, [round(rows / t) for t in times]


def flight_table(start, n, seed):
    """The COPY benchmark's ~100-byte rows as an Arrow table."""
    import pyarrow as pa
    rng = random.Random(seed)
    ids = range(start, start + n)
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "region": pa.array([REGIONS[i % len(REGIONS)] for i in ids]),
        "x": pa.array([rng.random() * 1000 for _ in ids], pa.float64()),
        "payload": pa.array([f"{'p' * 48}{i:012d}" for i in ids]),
    })
    # Flight clients cap one message (ADBC's Go client: 16 MiB): ~6 MB batches.
    return pa.Table.from_batches(table.to_batches(max_chunksize=65_536))


FLIGHT_INGEST_RUNS = 3


def bench_flight(db, rows, seed, chunk_rows=1_000_000, writers=2):
    """Flight SQL bulk ingest (ADBC adbc_ingest, `writers` concurrent clients, one put per
    chunk) and Flight read of the whole table (ADBC fetch_arrow_table); the read is compared
    with psycopg's binary COPY of the same SELECT over the Postgres protocol (ours, and
    PostgreSQL's in its own run)."""
    import concurrent.futures
    import adbc_driver_flightsql.dbapi as flight_sql
    uri = "grpc://" + json.loads((db.data / "listeners.json").read_text())["flight"]
    chunks = [flight_table(s, min(chunk_rows, rows - s), seed + s) for s in range(0, rows, chunk_rows)]
    arrow_bytes = sum(c.nbytes for c in chunks)

    def put(part):
        with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            return sum(cur.adbc_ingest("fbench", chunk, mode="append") for chunk in part)

    # Each run into a new table, once the server has settled (flushed the last run's rows);
    # the median is reported, and every run printed.
    ingest_runs = []
    for _ in range(FLIGHT_INGEST_RUNS):
        with psycopg.connect(db.dsn, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS fbench")
            c.execute(TABLE_SQL.replace("bench", "fbench") + " WITH (partitions = 4)")
        wait_until_idle(db.pid)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(writers) as pool:
            ingested = sum(pool.map(put, [chunks[i::writers] for i in range(writers)]))
        ingest_runs.append(time.perf_counter() - t0)
        assert ingested == rows, (ingested, rows)
    ingest_s = statistics.median(ingest_runs)

    with psycopg.connect(db.dsn, autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM fbench").fetchone()[0] == rows
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
        t0 = time.perf_counter()
        cur.execute("SELECT * FROM fbench")
        table = cur.fetch_arrow_table()
        read_s = time.perf_counter() - t0
    assert table.num_rows == rows
    read_bytes = table.nbytes
    del table
    pg_copy_s, pg_copy_bytes = copy_read(db.dsn, "SELECT * FROM fbench", "binary")
    return {
        "fl_ingest_rows_s": rows / ingest_s, "fl_ingest_mb_s": arrow_bytes / ingest_s / 1e6,
        "fl_ingest_runs_rows_s": [rows / s for s in ingest_runs],
        "fl_read_rows_s": rows / read_s, "fl_read_mb_s": read_bytes / read_s / 1e6,
        "pgwire_copy_read_rows_s": rows / pg_copy_s, "pgwire_copy_read_mb_s": pg_copy_bytes / pg_copy_s / 1e6,
    }


def copy_read(dsn, query, fmt):
    """psycopg's COPY of a query's rows (read, not decoded); seconds and bytes."""
    total = 0
    with psycopg.connect(dsn, autocommit=True) as c:
        t0 = time.perf_counter()
        with c.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT {fmt})") as cp:
            for data in cp:
                total += len(data)
        elapsed = time.perf_counter() - t0
    return elapsed, total


def wait_until_idle(pid, busy_below=0.05, timeout_s=60):
    """Waits until the process used under `busy_below` of a core over half a second."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        before = sum(cpu_seconds(pid).values())
        time.sleep(0.5)
        if sum(cpu_seconds(pid).values()) - before < busy_below * 0.5:
            return


def cpu_seconds(pid):
    """User + system CPU of a process and its children (PostgreSQL's backends), by pid."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    out = {}
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


async def bench_insert(db, seconds, conns, server_pid):
    """Rows/s, p50 and p99 latency, and server CPU microseconds per row (sampled over the
    middle of the run, while every connection is open: CPU per row is steadier than
    rows/s on a 2-core machine shared with the client)."""
    latencies, stop_at = [], time.perf_counter() + seconds
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS ins")
        c.execute("CREATE TABLE ins (id BIGINT, region TEXT, x DOUBLE PRECISION, payload TEXT)")

    async def worker(w):
        conn = await asyncpg.connect(dsn=to_url(db.dsn))
        stmt = await conn.prepare("INSERT INTO ins VALUES ($1, $2, $3, $4)")
        i = 0
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await stmt.fetch(w * 10_000_000 + i, REGIONS[i % 8], 1.5, "p" * 60)
            latencies.append(time.perf_counter() - t)
            i += 1
        await conn.close()

    cpu = {}

    async def sample():
        await asyncio.sleep(seconds * 0.2)
        cpu["before"], cpu["rows_before"], cpu["t0"] = cpu_seconds(server_pid), len(latencies), time.perf_counter()
        await asyncio.sleep(seconds * 0.6)
        after = cpu_seconds(server_pid)
        cpu["used"] = sum(v - cpu["before"].get(p, 0) for p, v in after.items())
        cpu["rows"] = len(latencies) - cpu["rows_before"]

    t0 = time.perf_counter()
    await asyncio.gather(sample(), *(worker(w) for w in range(conns)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    return len(latencies) / elapsed, pct(0.5), pct(0.99), cpu["used"] / max(cpu["rows"], 1) * 1e6


PGBENCH_SCRIPT = """\\set id random(1, 1000000000)
INSERT INTO ins_pgbench VALUES (:id, 'eu-west', 1.5, '""" + "p" * 60 + """');
"""


def bench_pgbench(db, seconds, conns, server_pid, tmp):
    """The same one-row INSERT from pgbench (PostgreSQL's own C client, prepared statements,
    2 threads): the client costs far less CPU than asyncpg, so on 2 cores this measures the
    server more than the client. Rows/s, p50/p99 latency from pgbench's per-transaction
    log, and server CPU per row."""
    if not shutil.which("pgbench"):
        return None
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS ins_pgbench")
        c.execute("CREATE TABLE ins_pgbench (id BIGINT, region TEXT, x DOUBLE PRECISION, payload TEXT)")
    work = Path(tmp) / f"pgbench-{db.name}"
    work.mkdir()
    (work / "insert.sql").write_text(PGBENCH_SCRIPT)
    proc = subprocess.Popen(["pgbench", "-n", "-M", "prepared", "-c", str(conns), "-j", "2", "-T", str(int(seconds)),
                             "-f", str(work / "insert.sql"), "-l", "--log-prefix", str(work / "tx"), db.dsn],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work)
    # CPU is sampled over the middle of the run, while every backend is alive.
    time.sleep(seconds * 0.2)
    t_before, before = time.time(), cpu_seconds(server_pid)
    time.sleep(seconds * 0.6)
    t_after, after = time.time(), cpu_seconds(server_pid)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        sys.exit("pgbench failed against " + db.name + ":\n" + stderr)
    # Log line: client_id transaction_no latency_us script_no epoch_s epoch_us
    log = [line.split() for f in work.glob("tx*") for line in open(f)]
    latencies = sorted(int(fields[2]) for fields in log)
    in_window = sum(1 for fields in log if t_before <= int(fields[4]) + int(fields[5]) / 1e6 <= t_after)
    used = sum(v - before.get(p, 0) for p, v in after.items())
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1000
    tps = float(next(l for l in stdout.splitlines() if l.startswith("tps")).split()[2])
    return tps, pct(0.5), pct(0.99), used / max(in_window, 1) * 1e6


FEED_EVENTS = 1000
FEED_PAUSE_S = 0.002


def bench_feed(db, events=FEED_EVENTS):
    """Insert-to-delivery latency of a change feed: one writer INSERTs single rows (a short
    pause between them, so this measures latency, not queueing); a subscriber notes when
    each arrives. StreamHouse: COPY (SUBSCRIBE …) TO STDOUT. PostgreSQL: the usual way to
    push new rows, a trigger calling pg_notify and a LISTENing connection. p50/p99 in ms."""
    import threading
    sent, got = {}, {}
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS feed")
        c.execute("CREATE TABLE feed (id BIGINT, payload TEXT)")
        if isinstance(db, Postgres):
            c.execute("CREATE OR REPLACE FUNCTION feed_notify() RETURNS trigger AS $$ BEGIN "
                      "PERFORM pg_notify('feed', NEW.id::text); RETURN NEW; END $$ LANGUAGE plpgsql")
            c.execute("CREATE TRIGGER feed_notify AFTER INSERT ON feed FOR EACH ROW EXECUTE FUNCTION feed_notify()")
    listener = psycopg.connect(db.dsn, autocommit=True)
    ready = threading.Event()

    def listen():
        if isinstance(db, Postgres):
            listener.execute("LISTEN feed")
            ready.set()
            for note in listener.notifies():
                got[int(note.payload)] = time.perf_counter()
                if len(got) == events:
                    return
        else:
            with listener.cursor().copy("COPY (SUBSCRIBE feed FROM LATEST) TO STDOUT") as copy:
                ready.set()
                for row in copy.rows():
                    got[int(row[2])] = time.perf_counter()
                    if len(got) == events:
                        listener.cancel_safe()
                        try:
                            for _ in copy.rows():
                                pass
                        except psycopg.Error:
                            pass
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(30)
    time.sleep(0.2)
    with psycopg.connect(db.dsn, autocommit=True) as w:
        for i in range(events):
            sent[i] = time.perf_counter()
            w.execute("INSERT INTO feed VALUES (%s, 'x')", (i,))
            time.sleep(FEED_PAUSE_S)
    t.join(60)
    listener.close()
    lat = sorted((got[i] - sent[i]) * 1000 for i in sent if i in got)
    if len(lat) < events:
        sys.exit(f"{db.name}: only {len(lat)} of {events} feed events arrived")
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


FRESH_RATES = (10_000, 100_000)
FRESH_SECONDS = 5
FRESH_BATCH_S = 0.01


def bench_freshness(db, rate, seconds=FRESH_SECONDS):
    """Freshness at a steady `rate` rows/s (one INSERT of rate/100 rows every 10 ms): time
    from each INSERT's acknowledgement until (a) its last row reaches a subscriber of the
    table and (b) a per-second windowed count over the table counts it, seen by a
    subscriber of that count. StreamHouse: COPY (SUBSCRIBE …) of the table and of a
    materialized view over TUMBLE. PostgreSQL: how one gets the same there, a statement
    trigger that upserts the per-second counts from the inserted rows and NOTIFYs the new
    max id and total, a LISTENing connection. p50/p99 in ms over the INSERTs, from the
    acknowledgement (an arrival before it counts as 0) and from when the INSERT was sent
    (PostgreSQL maintains its counts inside the INSERT, so only this one compares the
    two). The subscribers are Python (psycopg) clients: at 100 K rows/s the table's feed
    is 100 K CopyData messages/s for them to read, which is part of what is measured."""
    import threading
    per_batch, batches = int(rate * FRESH_BATCH_S), int(seconds / FRESH_BATCH_S)
    is_pg = isinstance(db, Postgres)
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS fresh_per_sec" if not is_pg else "DROP TABLE IF EXISTS fresh_per_sec")
        c.execute("DROP TABLE IF EXISTS fresh")
        c.execute("CREATE TABLE fresh (id BIGINT, ts TIMESTAMPTZ, v DOUBLE PRECISION)")
        if is_pg:
            c.execute("CREATE TABLE fresh_per_sec (window_start TIMESTAMPTZ PRIMARY KEY, n BIGINT)")
            c.execute("CREATE OR REPLACE FUNCTION fresh_maintain() RETURNS trigger AS $$ BEGIN "
                      "INSERT INTO fresh_per_sec SELECT date_bin('1 second', ts, TIMESTAMPTZ '2000-01-01'), count(*) FROM new_rows GROUP BY 1 "
                      "ON CONFLICT (window_start) DO UPDATE SET n = fresh_per_sec.n + excluded.n; "
                      "PERFORM pg_notify('fresh', (SELECT max(id) FROM new_rows)::text); "
                      "PERFORM pg_notify('fresh_view', (SELECT sum(n) FROM fresh_per_sec)::text); "
                      "RETURN NULL; END $$ LANGUAGE plpgsql")
            c.execute("CREATE TRIGGER fresh_maintain AFTER INSERT ON fresh REFERENCING NEW TABLE AS new_rows "
                      "FOR EACH STATEMENT EXECUTE FUNCTION fresh_maintain()")
        else:
            c.execute("CREATE MATERIALIZED VIEW fresh_per_sec AS SELECT window_start, count(*) AS n "
                      "FROM TUMBLE(fresh, ts, INTERVAL '1 second') GROUP BY window_start")
    sent, acked, fed, counted = [None] * batches, [None] * batches, [None] * batches, [None] * batches
    progress = {"fed": 0, "counted": 0}

    def rows_fed(rows):  # ids run from 0: batch k is delivered once (k+1)*per_batch rows have arrived
        now = time.perf_counter()
        while progress["fed"] < batches and (progress["fed"] + 1) * per_batch <= rows:
            fed[progress["fed"]] = now
            progress["fed"] += 1

    def rows_counted(total):
        now = time.perf_counter()
        while progress["counted"] < batches and (progress["counted"] + 1) * per_batch <= total:
            counted[progress["counted"]] = now
            progress["counted"] += 1

    listeners, ready = [], threading.Barrier(2 if is_pg else 3)

    def follow_pg():
        conn = psycopg.connect(db.dsn, autocommit=True)
        listeners.append(conn)
        conn.execute("LISTEN fresh")
        conn.execute("LISTEN fresh_view")
        ready.wait()
        for note in conn.notifies():
            if note.channel == "fresh":
                rows_fed(int(note.payload) + 1)  # the max id: ids from 0, so that many rows
            else:
                rows_counted(int(note.payload))
            if progress["fed"] == batches and progress["counted"] == batches:
                return

    def follow_sh(sql, on_line):
        conn = psycopg.connect(db.dsn, autocommit=True)
        listeners.append(conn)
        pending = b""
        try:
            with conn.cursor().copy(sql) as copy:
                ready.wait()
                while True:
                    data = copy.read()
                    if not data:
                        return
                    lines = (pending + bytes(data)).split(b"\n")
                    pending = lines.pop()
                    if on_line(lines):
                        conn.cancel_safe()
        except psycopg.Error:
            pass  # cancelled once everything arrived

    def feed_lines(lines):  # _partition, _offset, id, ts, v: the last complete line says how far
        if lines:
            rows_fed(int(lines[-1].split(b"\t")[2]) + 1)
        return progress["fed"] == batches

    windows = {}

    def view_lines(lines):  # _partition, _offset, window_start, n, _change
        for line in lines:
            fields = line.split(b"\t")
            if fields[-1] in (b"insert", b"update_after"):
                windows[fields[2]] = int(fields[3])
        rows_counted(sum(windows.values()))
        return progress["counted"] == batches

    followers = [threading.Thread(target=follow_pg, daemon=True)] if is_pg else [
        threading.Thread(target=follow_sh, args=("COPY (SUBSCRIBE fresh FROM LATEST) TO STDOUT", feed_lines), daemon=True),
        threading.Thread(target=follow_sh, args=("COPY (SUBSCRIBE fresh_per_sec FROM LATEST) TO STDOUT", view_lines), daemon=True)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # three threads share the GIL: hand it over quickly
    try:
        for t in followers:
            t.start()
        ready.wait(30)
        time.sleep(0.2)
        with psycopg.connect(db.dsn, autocommit=True) as w:
            t0 = time.perf_counter()
            for k in range(batches):
                pause = t0 + k * FRESH_BATCH_S - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                first = k * per_batch
                sent[k] = time.perf_counter()
                w.execute(f"INSERT INTO fresh SELECT x, now(), 1.0 FROM generate_series({first}, {first + per_batch - 1}) AS s(x)")
                acked[k] = time.perf_counter()
            achieved = batches * per_batch / (time.perf_counter() - t0)
        for t in followers:
            t.join(30)
    finally:
        sys.setswitchinterval(switch)
        for conn in listeners:
            conn.close()
    if None in fed or None in counted:
        sys.exit(f"{db.name}: freshness at {rate:,} rows/s: {progress} of {batches} inserts arrived")
    def percentiles(arrived, since):
        lat = sorted(max(0.0, a - b) * 1000 for a, b in zip(arrived, since))
        return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
    return {"rate": achieved, "feed": percentiles(fed, acked), "view": percentiles(counted, acked),
            "feed_sent": percentiles(fed, sent), "view_sent": percentiles(counted, sent)}


def bench_mv_backfill(db, rows, seed):
    """CREATE MATERIALIZED VIEW over `rows` rows already stored (a filter and projection):
    StreamHouse backfills before CREATE returns and then maintains the view; PostgreSQL
    computes a snapshot. Seconds, and source rows/s."""
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS bench_eu")
    bench_copy(db, rows, seed)
    with psycopg.connect(db.dsn, autocommit=True) as c:
        t0 = time.perf_counter()
        c.execute("CREATE MATERIALIZED VIEW bench_eu AS SELECT id, x * 2 AS x2, payload FROM bench WHERE region LIKE 'eu%'")
        elapsed = time.perf_counter() - t0
        n = c.execute("SELECT count(*) FROM bench_eu").fetchone()[0]
        if n != rows // 4:
            sys.exit(f"{db.name}: the materialized view has {n} rows, expected {rows // 4}")
    return elapsed, rows / elapsed


def bench_mv_aggregate(db, rows, seed):
    """An aggregating materialized view (GROUP BY with count, sum, avg) over the `rows`
    rows bench_mv_backfill left: seconds to create it (backfill), then seconds until it
    reflects `rows // 4` more rows written by COPY: StreamHouse maintains it
    incrementally (polled until the counts add up), PostgreSQL recomputes it with
    REFRESH MATERIALIZED VIEW."""
    extra = rows // 4
    query = "SELECT region, count(*) AS n, sum(x) AS total, avg(x) AS mean FROM bench GROUP BY region"
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS bench_agg")
        t0 = time.perf_counter()
        c.execute(f"CREATE MATERIALIZED VIEW bench_agg AS {query}")
        created = time.perf_counter() - t0
        rng = random.Random(seed + 1)
        chunks = [rows_text(rows + s, min(COPY_CHUNK_ROWS, extra - s), rng) for s in range(0, extra, COPY_CHUNK_ROWS)]
        with c.cursor().copy("COPY bench FROM STDIN") as cp:
            for chunk in chunks:
                cp.write(chunk)
        t0 = time.perf_counter()
        if isinstance(db, StreamHouse):
            deadline = t0 + 120
            while c.execute("SELECT sum(n) FROM bench_agg").fetchone()[0] != rows + extra:
                if time.perf_counter() > deadline:
                    sys.exit(f"{db.name}: the aggregating view never caught up")
                time.sleep(0.002)
        else:
            c.execute("REFRESH MATERIALIZED VIEW bench_agg")
        caught_up = time.perf_counter() - t0
        n = c.execute("SELECT sum(n) FROM bench_agg").fetchone()[0]
        if n != rows + extra:
            sys.exit(f"{db.name}: the aggregating view counts {n} rows, expected {rows + extra}")
    return created, caught_up


STATE_GROUPS = 1_000_000


def bench_view_state(db, groups=STATE_GROUPS):
    """Memory held by an aggregating view's state: a view grouping by a key of `groups`
    distinct values (count, sum, avg), fed `groups` rows by COPY; the server's resident
    memory before and after it caught up (MiB), and per group (bytes). StreamHouse keeps
    the groups' states in memory (the growth also holds the in-memory tails of the table,
    the view's state table and its change log); PostgreSQL's peer is the same view
    refreshed with REFRESH MATERIALIZED VIEW (its result is on disk), measured the same way."""
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS per_key")
        c.execute("DROP TABLE IF EXISTS keyed")
        c.execute("CREATE TABLE keyed (k BIGINT, x DOUBLE PRECISION)")
        c.execute("CREATE MATERIALIZED VIEW per_key AS SELECT k, count(*) AS n, sum(x) AS total, avg(x) AS mean FROM keyed GROUP BY k")
        pid = db.pid if isinstance(db, StreamHouse) else db.postmaster
        time.sleep(0.5)
        before = memory_mib(pid, "VmRSS:")
        data = "".join(f"{i}\t{i % 1000}.5\n" for i in range(groups)).encode()
        with c.cursor().copy("COPY keyed FROM STDIN") as cp:
            cp.write(data)
        if isinstance(db, StreamHouse):
            deadline = time.time() + 300
            while c.execute("SELECT count(*) FROM per_key").fetchone()[0] != groups:
                if time.time() > deadline:
                    sys.exit("the per-key view never caught up")
                time.sleep(0.05)
        else:
            c.execute("REFRESH MATERIALIZED VIEW per_key")
        after = memory_mib(pid, "VmRSS:")
        c.execute("DROP MATERIALIZED VIEW per_key")
        c.execute("DROP TABLE keyed")
    return before, after, (after - before) * 1024 * 1024 / groups


def view_status(conn, name):
    """The row of SHOW MATERIALIZED VIEWS for view `name`, as a dict."""
    cur = conn.execute("SHOW MATERIALIZED VIEWS")
    names = [d.name for d in cur.description]
    return next(dict(zip(names, r)) for r in cur.fetchall() if r[1] == name)


def refresh_and_count(conn, name):
    """PostgreSQL's side of a view bench: REFRESH view `name`, then its row count."""
    conn.execute(f"REFRESH MATERIALIZED VIEW {name}")
    return conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]


JOIN_EVENTS = 1_000_000
JOIN_ADS = 20_000
JOIN_STEP_MS = 10  # event time between consecutive events of a table
JOIN_SQL = ("SELECT i.id AS imp, c.id AS click FROM imps i JOIN clicks c "
            "ON c.ad = i.ad AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '3 minutes'")


def bench_interval_join(db, events=JOIN_EVENTS):
    """An interval join of two streams (impressions and the clicks up to 3 minutes after
    them), `events` rows in all written by COPY in event-time order. StreamHouse: the
    tables have `WATERMARK FOR ts AS ts - INTERVAL '2 minutes'` and the materialized view
    is maintained as the rows arrive: seconds from the first COPY until the view holds
    every match (events/s, ingest included), the rows it holds to join with at the end
    (`held_rows`: the last minutes, not everything), and the server's RSS growth.
    PostgreSQL: the same tables (no watermark) and view, refreshed once after the COPY."""
    half = events // 2
    rng = random.Random(7)
    t0_ms = 1_740_000_000_000

    def rows(kind):
        out = io.StringIO()
        for n in range(half):
            ts = t0_ms + n * JOIN_STEP_MS + (rng.randrange(0, 60_000) if kind == "clicks" else 0)
            out.write(f"{n}\t{rng.randrange(JOIN_ADS)}\t{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(ts // 1000))}.{ts % 1000:03d}+00\n")
        return out.getvalue().encode()

    imps, clicks = rows("imps"), rows("clicks")
    # Clicks come up to a minute after their impression: a 2-minute delay makes none late.
    watermark = ", WATERMARK FOR ts AS ts - INTERVAL '2 minutes'" if isinstance(db, StreamHouse) else ""
    pid = db.pid if isinstance(db, StreamHouse) else db.postmaster
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS clicked")
        for table in ("imps", "clicks"):
            c.execute(f"DROP TABLE IF EXISTS {table}")
            c.execute(f"CREATE TABLE {table} (id BIGINT, ad INT, ts TIMESTAMPTZ{watermark})")
        c.execute(f"CREATE MATERIALIZED VIEW clicked AS {JOIN_SQL}")
        time.sleep(0.5)
        before = memory_mib(pid, "VmRSS:")
        t0 = time.perf_counter()
        # Interleaved in event time: a chunk of impressions, then the clicks of that span.
        chunk = 10_000  # 100 s of event time: less than the delay
        imp_lines, click_lines = imps.splitlines(keepends=True), clicks.splitlines(keepends=True)
        for at in range(0, half, chunk):
            for table, lines in (("imps", imp_lines), ("clicks", click_lines)):
                with c.cursor().copy(f"COPY {table} FROM STDIN") as cp:
                    cp.write(b"".join(lines[at:at + chunk]))
        if isinstance(db, StreamHouse):
            expected = c.execute(f"SELECT count(*) FROM ({JOIN_SQL}) AS j").fetchone()[0]
            deadline = time.perf_counter() + float(os.environ.get("JOIN_TIMEOUT_S", "300"))
            while c.execute("SELECT count(*) FROM clicked").fetchone()[0] != expected:
                if time.perf_counter() > deadline:
                    sys.exit("the interval join view never caught up")
                time.sleep(0.01)
            held = view_status(c, "clicked")["held_rows"]
        else:
            expected = refresh_and_count(c, "clicked")
            held = None
        elapsed = time.perf_counter() - t0
        after = memory_mib(pid, "VmRSS:")
        c.execute("DROP MATERIALIZED VIEW clicked")
        for table in ("imps", "clicks"):
            c.execute(f"DROP TABLE {table}")
    return {"join_s": elapsed, "join_events_s": events / elapsed, "join_matches": expected, "join_held": held, "join_rss_mib": after - before}


SESSION_EVENTS = 1_000_000
SESSION_GROUP_USERS = 5_000  # users active together, for SESSION_GROUP_EVENTS events
SESSION_GROUP_EVENTS = 50_000
SESSION_STEP_MS = 6  # event time between consecutive events
SESSION_SQL = ("SELECT user_id, window_start, window_end, count(*) AS n FROM SESSION(pv, ts, INTERVAL '5 minutes') "
               "GROUP BY user_id, window_start, window_end")
# The same sessions in PostgreSQL's SQL (what SESSION is rewritten into).
SESSION_PG_SQL = ("SELECT user_id, min(ts) AS window_start, max(ts) + INTERVAL '5 minutes' AS window_end, count(*) AS n FROM ("
                  "SELECT *, sum(CASE WHEN prev IS NOT NULL AND ts - prev < INTERVAL '5 minutes' THEN 0 ELSE 1 END) "
                  "OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS s FROM ("
                  "SELECT user_id, ts, lag(ts) OVER (PARTITION BY user_id ORDER BY ts) AS prev FROM pv) AS a) AS b "
                  "GROUP BY user_id, s")


def bench_sessions(db, events=SESSION_EVENTS):
    """SESSION windows per user (5-minute gap) over `events` page views written by COPY
    in event-time order; every SESSION_GROUP_EVENTS events (5 minutes of event time) a new
    group of users is active, so earlier users' sessions close. StreamHouse: the table has
    `WATERMARK FOR ts AS ts - INTERVAL '1 minute'` and the view is maintained as rows
    arrive: events/s from the first COPY until the view holds every session (ingest
    included), the rows it holds at the end (open sessions' only) and the RSS growth.
    PostgreSQL: the same sessions as a materialized view of window functions, refreshed
    once after the COPY."""
    rng = random.Random(11)
    t0_ms = 1_740_000_000_000
    out = io.StringIO()
    for n in range(events):
        group = n // SESSION_GROUP_EVENTS
        user = group * SESSION_GROUP_USERS + rng.randrange(SESSION_GROUP_USERS)
        ts = t0_ms + n * SESSION_STEP_MS
        out.write(f"{user}\t{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(ts // 1000))}.{ts % 1000:03d}+00\n")
    lines = out.getvalue().encode().splitlines(keepends=True)
    sh = isinstance(db, StreamHouse)
    watermark = ", WATERMARK FOR ts AS ts - INTERVAL '1 minute'" if sh else ""
    pid = db.pid if sh else db.postmaster
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute("DROP MATERIALIZED VIEW IF EXISTS visits")
        c.execute("DROP TABLE IF EXISTS pv")
        c.execute(f"CREATE TABLE pv (user_id BIGINT, ts TIMESTAMPTZ{watermark})")
        c.execute(f"CREATE MATERIALIZED VIEW visits AS {SESSION_SQL if sh else SESSION_PG_SQL}")
        time.sleep(0.5)
        before = memory_mib(pid, "VmRSS:")
        t0 = time.perf_counter()
        chunk = 10_000
        for at in range(0, events, chunk):
            with c.cursor().copy("COPY pv FROM STDIN") as cp:
                cp.write(b"".join(lines[at:at + chunk]))
        if sh:
            expected = c.execute(f"SELECT count(*) FROM ({SESSION_SQL}) AS s").fetchone()[0]
            deadline = time.perf_counter() + float(os.environ.get("SESSION_TIMEOUT_S", "300"))
            while True:
                shown = view_status(c, "visits")
                if shown["lag_rows"] == 0 and c.execute("SELECT count(*) FROM visits").fetchone()[0] == expected:
                    break
                if time.perf_counter() > deadline:
                    sys.exit(f"the session view never caught up: {shown}")
                time.sleep(0.01)
            held = shown["held_rows"]
        else:
            expected = refresh_and_count(c, "visits")
            held = None
        elapsed = time.perf_counter() - t0
        after = memory_mib(pid, "VmRSS:")
        c.execute("DROP MATERIALIZED VIEW visits")
        c.execute("DROP TABLE pv")
    return {"session_s": elapsed, "session_events_s": events / elapsed, "session_count": expected, "session_held": held, "session_rss_mib": after - before}


KAFKA_MESSAGE_BYTES = 100
KAFKA_LATENCY_RATE = 50_000
KAFKA_LATENCY_SECONDS = 5
KAFKA_CONSUME_RUNS = 3


def bench_kafka(db, messages, tmp):
    """Kafka protocol: kcat (librdkafka) producing `messages` 100-byte messages with acks=all
    (acknowledged after fsync) into a 4-partition topic, kcat consuming them back, and the
    produce latency of confluent-kafka (linger.ms=1) at a steady 50 K messages/s."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": db.kafka_addr})
    admin.create_topics([NewTopic("kbench", 4, 1)])["kbench"].result(10)
    path = Path(tmp) / "kafka-messages.txt"
    with open(path, "w") as f:
        for i in range(messages):
            f.write(f"{i:012d}" + "x" * (KAFKA_MESSAGE_BYTES - 12) + "\n")
    common = ["-b", db.kafka_addr, "-t", "kbench", "-X", "queue.buffering.max.messages=2000000",
              "-X", "queue.buffering.max.kbytes=1048576"]
    t0 = time.perf_counter()
    subprocess.run(["kcat", "-P", "-l", *common, "-X", "acks=all", "-X", "linger.ms=10",
                    "-X", "batch.num.messages=100000", "-X", "batch.size=4000000", str(path)], check=True)
    produce_s = time.perf_counter() - t0
    with psycopg.connect(db.dsn, autocommit=True) as c:
        stored = c.execute("SELECT count(*) FROM kbench").fetchone()[0]
    assert stored == messages, f"{stored} of {messages} messages stored"
    # Consumers read stored messages: measured once the server has settled (flushing the
    # produced tails to segments), three times each, the medians reported with the server's
    # CPU per message. Two librdkafka clients: kcat writing every offset to a file (into a
    # file, as `kcat > file` would: a pipe into this process would make the benchmark's own
    # reading part of what is measured), and bench/kafka_consume.c, which only counts — on
    # these 2 cores the client needs more CPU than the server, so kcat's formatting shows.
    wait_until_idle(db.pid)
    consumed_path = Path(tmp) / "kafka-consumed.txt"

    def kcat_consume():
        with open(consumed_path, "wb") as sink:
            subprocess.run(["kcat", "-C", "-b", db.kafka_addr, "-t", "kbench", "-o", "beginning", "-e", "-q",
                            "-f", "%o\n", "-X", "fetch.max.bytes=52428800"], check=True, stdout=sink)
        return consumed_path.read_bytes().count(b"\n")

    def lean_consume():
        out = subprocess.run([os.environ["KAFKA_CONSUME_BIN"], db.kafka_addr, "kbench"],
                             check=True, capture_output=True, text=True).stdout
        consumed, value_bytes = map(int, out.split())
        assert value_bytes == messages * KAFKA_MESSAGE_BYTES, f"{value_bytes} value bytes consumed"
        return consumed

    consumers = {"kcat": kcat_consume}
    if os.environ.get("KAFKA_CONSUME_BIN"):
        consumers["lean"] = lean_consume
    consume = {}
    for name, run in consumers.items():
        seconds, server_cpu = [], []
        for _ in range(KAFKA_CONSUME_RUNS):
            cpu0 = sum(cpu_seconds(db.pid).values())
            t0 = time.perf_counter()
            consumed = run()
            seconds.append(time.perf_counter() - t0)
            server_cpu.append(sum(cpu_seconds(db.pid).values()) - cpu0)
            assert consumed == messages, f"{name}: consumed {consumed} of {messages}"
        consume[f"kafka_consume_{name}_msgs_s"] = messages / statistics.median(seconds)
        consume[f"kafka_consume_{name}_runs_msgs_s"] = [messages / s for s in seconds]
        consume[f"kafka_consume_{name}_server_us_per_msg"] = statistics.median(server_cpu) / messages * 1e6

    latencies = []
    # linger.ms=1: librdkafka waits up to 1 ms to fill a request (its default is 5 ms).
    p = Producer({"bootstrap.servers": db.kafka_addr, "acks": "all", "linger.ms": 1})
    value = b"y" * KAFKA_MESSAGE_BYTES
    interval = 1 / KAFKA_LATENCY_RATE
    start = time.perf_counter()
    sent = 0
    while time.perf_counter() - start < KAFKA_LATENCY_SECONDS:
        due = start + sent * interval
        now = time.perf_counter()
        if now < due:
            p.poll(0)
            continue
        t_send = now
        p.produce("kbench", value=value, on_delivery=lambda err, msg, t=t_send: latencies.append(time.perf_counter() - t))
        sent += 1
        if sent % 64 == 0:
            p.poll(0)
    p.flush(30)
    achieved = sent / KAFKA_LATENCY_SECONDS
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {"kafka_produce_msgs_s": messages / produce_s, **consume,
            "kafka_lat_rate": achieved, "kafka_lat_p50_ms": pct(0.50), "kafka_lat_p99_ms": pct(0.99)}


def to_url(dsn):
    if dsn.startswith("postgres"):
        return dsn
    kv = dict(p.split("=", 1) for p in dsn.split())
    return f"postgresql://{kv['user']}@{kv['host']}:{kv['port']}/{kv['dbname']}"


def bench_scan(db, runs=5):
    q = "SELECT region, count(*), avg(x) FROM bench GROUP BY region"
    times = []
    with psycopg.connect(db.dsn, autocommit=True) as c:
        c.execute(q).fetchall()  # warm
        for _ in range(runs):
            t = time.perf_counter()
            rows = c.execute(q).fetchall()
            times.append(time.perf_counter() - t)
    assert len(rows) == len(REGIONS)
    return statistics.median(times)


def bench_duckdb(glob, runs=5):
    try:
        import duckdb
    except ImportError:
        return None
    q = f"SELECT region, count(*), avg(x) FROM read_parquet('{glob}') GROUP BY region"
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute(q).fetchall()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        con.execute(q).fetchall()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows for the COPY benchmark")
    ap.add_argument("--copy-passes", type=int, default=3, help="COPY benchmark passes (the median is reported)")
    ap.add_argument("--scan-rows", type=int, default=10_000_000, help="rows for the GROUP BY benchmark")
    ap.add_argument("--insert-seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--flight-rows", type=int, default=10_000_000, help="rows for the Flight ingest/read benchmark")
    ap.add_argument("--mv-rows", type=int, default=2_000_000, help="rows for the materialized view backfill")
    ap.add_argument("--kafka-messages", type=int, default=5_000_000, help="messages for the Kafka benchmark")
    ap.add_argument("--only", default="copy,insert,scan,flight,feed,fresh,join,session,kafka",
                    help="comma-separated subset of copy,insert,scan,flight,feed,fresh,join,session,kafka")
    args = ap.parse_args()
    only = set(args.only.split(","))

    results = {}
    with tempfile.TemporaryDirectory(prefix="streamhouse-bench-") as tmp:
        os.chmod(tmp, 0o755)
        for cls in (StreamHouse, Postgres):
            db = cls(tmp)
            try:
                r = {}
                if "copy" in only:
                    r["copy_rows_s"], r["copy_mb_s"], r["copy_passes_rows_s"] = bench_copy(db, args.rows, args.seed, args.copy_passes)
                server_pid = db.pid if cls is StreamHouse else db.postmaster
                if "insert" in only:
                    r["ins_rows_s"], r["ins_p50_ms"], r["ins_p99_ms"], r["ins_cpu_us"] = asyncio.run(
                        bench_insert(db, args.insert_seconds, args.connections, server_pid))
                    pgbench = bench_pgbench(db, args.insert_seconds, args.connections, server_pid, tmp)
                    if pgbench:
                        r["pgb_rows_s"], r["pgb_p50_ms"], r["pgb_p99_ms"], r["pgb_cpu_us"] = pgbench
                if "scan" in only:
                    bench_copy(db, args.scan_rows, args.seed)
                    if cls is StreamHouse:
                        with psycopg.connect(db.dsn, autocommit=True) as c:
                            c.execute("SELECT 1")
                        time.sleep(1)
                        scan_table_id = db.newest_table_id()
                    r["scan_s"] = bench_scan(db)
                    # The memory figure: ingesting (and then scanning) 10 M rows.
                    r["peak_mib"] = peak_rss_mib(db.pid if cls is StreamHouse else db.postmaster)
                    if cls is StreamHouse:
                        db.stop()  # flushes every tail to Parquet for DuckDB
                        r["duckdb_scan_s"] = bench_duckdb(db.parquet_glob(scan_table_id))
                        db = StreamHouse(tmp)  # later sections drop and reuse table names
                if "flight" in only:
                    if cls is StreamHouse:
                        r.update(bench_flight(db, args.flight_rows, args.seed))
                    else:
                        with psycopg.connect(db.dsn, autocommit=True) as c:
                            c.execute("DROP TABLE IF EXISTS fbench")
                            c.execute(TABLE_SQL.replace("bench", "fbench"))
                            with c.cursor().copy("COPY fbench FROM STDIN") as cp:
                                rng = random.Random(args.seed)
                                for s0 in range(0, args.flight_rows, COPY_CHUNK_ROWS):
                                    cp.write(rows_text(s0, min(COPY_CHUNK_ROWS, args.flight_rows - s0), rng))
                        s_, b_ = copy_read(db.dsn, "SELECT * FROM fbench", "binary")
                        r["pgwire_copy_read_rows_s"], r["pgwire_copy_read_mb_s"] = args.flight_rows / s_, b_ / s_ / 1e6
                if "kafka" in only and cls is StreamHouse:
                    r.update(bench_kafka(db, args.kafka_messages, tmp))
                if "feed" in only:
                    r["feed_p50_ms"], r["feed_p99_ms"] = bench_feed(db)
                    r["mv_s"], r["mv_rows_s"] = bench_mv_backfill(db, args.mv_rows, args.seed)
                    r["mv_agg_s"], r["mv_agg_update_s"] = bench_mv_aggregate(db, args.mv_rows, args.seed)
                if "join" in only:
                    r.update(bench_interval_join(db))
                if "session" in only:
                    r.update(bench_sessions(db))
                if "fresh" in only:
                    r["fresh"] = {rate: bench_freshness(db, rate) for rate in FRESH_RATES}
                    r["state_before_mib"], r["state_after_mib"], r["state_bytes_per_group"] = bench_view_state(db)
                r.setdefault("peak_mib", peak_rss_mib(db.pid if cls is StreamHouse else db.postmaster))
                results[db.name] = r
            finally:
                db.stop()

    sh, pg = results["streamhouse"], results["postgresql"]
    print(f"\nStreamHouse vs PostgreSQL 15 on this machine ({os.cpu_count()} cores), same client, same data (~100-byte rows)\n")
    print(f"{'benchmark':<44}{'streamhouse':>14}{'postgresql':>14}{'ratio':>9}")
    def line(name, key, fmt, higher=True):
        if key in sh:
            a, b = sh[key], pg[key]
            print(f"{name:<44}{fmt.format(a):>14}{fmt.format(b):>14}{(a / b if higher else b / a):>8.2f}x")
    line(f"COPY FROM STDIN, rows/s ({args.rows:,} rows)", "copy_rows_s", "{:,.0f}")
    if "copy_passes_rows_s" in sh:
        passes = lambda r: " ".join(f"{v / 1e6:.2f}" for v in r["copy_passes_rows_s"])
        print(f"{'  each pass, M rows/s (median above)':<44}{passes(sh):>15}{passes(pg):>15}")
    line(f"INSERT 1 row x {args.connections} conns (asyncpg), rows/s", "ins_rows_s", "{:,.0f}")
    line("  INSERT latency p50, ms", "ins_p50_ms", "{:.2f}", higher=False)
    line("  INSERT latency p99, ms", "ins_p99_ms", "{:.2f}", higher=False)
    line("  INSERT server CPU per row, us", "ins_cpu_us", "{:.1f}", higher=False)
    line(f"INSERT 1 row x {args.connections} conns (pgbench), rows/s", "pgb_rows_s", "{:,.0f}")
    line("  INSERT latency p50, ms", "pgb_p50_ms", "{:.2f}", higher=False)
    line("  INSERT latency p99, ms", "pgb_p99_ms", "{:.2f}", higher=False)
    line("  INSERT server CPU per row, us", "pgb_cpu_us", "{:.1f}", higher=False)
    line(f"GROUP BY over {args.scan_rows:,} rows, s", "scan_s", "{:.3f}", higher=False)
    line(f"INSERT-to-delivery p50, ms (SUBSCRIBE | NOTIFY)", "feed_p50_ms", "{:.2f}", higher=False)
    line(f"INSERT-to-delivery p99, ms (SUBSCRIBE | NOTIFY)", "feed_p99_ms", "{:.2f}", higher=False)
    line(f"CREATE MATERIALIZED VIEW over {args.mv_rows:,} rows, s", "mv_s", "{:.3f}", higher=False)
    line(f"  GROUP BY view: CREATE, s", "mv_agg_s", "{:.3f}", higher=False)
    line(f"  GROUP BY view: +{args.mv_rows // 4:,} rows reflected, s", "mv_agg_update_s", "{:.3f}", higher=False)
    if "fresh" in only:
        print("\nFreshness, p50 / p99 ms: from INSERT acknowledged (goals: p99 < 10 to a subscriber, < 25 to a view),"
              "\nand from INSERT sent (PostgreSQL maintains inside the INSERT: only this one compares)")
        for rate in FRESH_RATES:
            a, b = sh["fresh"][rate], pg["fresh"][rate]
            for what, label in (("feed", "to a subscriber of the table"), ("view", "to per-second counts (view | trigger)")):
                print(f"{f'  {rate // 1000}K rows/s {label}':<44}{a[what][0]:>6.2f} /{a[what][1]:>6.2f}{b[what][0]:>7.2f} /{b[what][1]:>6.2f}")
                sa, sb = a[what + "_sent"], b[what + "_sent"]
                print(f"{'    from INSERT sent':<44}{sa[0]:>6.2f} /{sa[1]:>6.2f}{sb[0]:>7.2f} /{sb[1]:>6.2f}{sb[1] / max(sa[1], 1e-3):>8.2f}x (p99)")
            print(f"{'    rate achieved, rows/s':<44}{a['rate']:>14,.0f}{b['rate']:>14,.0f}")
        print(f"{f'view state, {STATE_GROUPS:,} groups: RSS growth, MiB':<44}"
              f"{sh['state_after_mib'] - sh['state_before_mib']:>14.0f}{pg['state_after_mib'] - pg['state_before_mib']:>14.0f}")
        print(f"{'  bytes per group (PostgreSQL: on disk)':<44}{sh['state_bytes_per_group']:>14.0f}{pg['state_bytes_per_group']:>14.0f}")
    if "join" in only:
        print(f"\nInterval join, {JOIN_EVENTS:,} events (impressions and clicks up to 3 minutes later), written by COPY in event-time order")
        print(f"{'  events/s until the view holds every match':<44}{sh['join_events_s']:>14,.0f}{pg['join_events_s']:>14,.0f}{sh['join_events_s'] / pg['join_events_s']:>8.2f}x"
              "   (PostgreSQL: COPY then REFRESH)")
        print(f"{'  matches':<44}{sh['join_matches']:>14,}{pg['join_matches']:>14,}")
        print(f"{'  rows held to join with at the end':<44}{sh['join_held']:>14,}{'all':>14}   of {JOIN_EVENTS:,}")
        print(f"{'  server RSS growth, MiB':<44}{sh['join_rss_mib']:>14.0f}{pg['join_rss_mib']:>14.0f}")
    if "session" in only:
        print(f"\nSESSION windows per user (5-minute gap), {SESSION_EVENTS:,} page views written by COPY in event-time order")
        print(f"{'  events/s until the view holds every session':<44}{sh['session_events_s']:>14,.0f}{pg['session_events_s']:>14,.0f}{sh['session_events_s'] / pg['session_events_s']:>8.2f}x")
        print(f"{'  sessions':<44}{sh['session_count']:>14,}{pg['session_count']:>14,}")
        print(f"{'  rows held (open sessions) at the end':<44}{sh['session_held']:>14,}{'all':>14}   of {SESSION_EVENTS:,}")
        print(f"{'  server RSS growth, MiB':<44}{sh['session_rss_mib']:>14.0f}{pg['session_rss_mib']:>14.0f}")
    if "flight" in only:
        print(f"\nArrow Flight SQL ({args.flight_rows:,} rows; StreamHouse only, peers in the same run)")
        ingest, read = sh["fl_ingest_rows_s"], sh["fl_read_rows_s"]
        print(f"{'Flight bulk ingest (ADBC, fsync), rows/s':<44}{ingest:>14,.0f}   {sh['fl_ingest_mb_s']:,.0f} MB/s Arrow;"
              f" {ingest / sh['copy_rows_s']:.2f}x our COPY" if "copy_rows_s" in sh else
              f"{'Flight bulk ingest (ADBC, fsync), rows/s':<44}{ingest:>14,.0f}   {sh['fl_ingest_mb_s']:,.0f} MB/s Arrow")
        if "copy_rows_s" in pg:
            print(f"{'  vs PostgreSQL COPY FROM STDIN':<44}{'':>14}{pg['copy_rows_s']:>14,.0f}{ingest / pg['copy_rows_s']:>8.2f}x")
        print(f"{'  share of the disk limit (1.3 GB/s durable)':<44}{sh['fl_ingest_mb_s'] / 1300:>14.1%}")
        print(f"{f'  each of {FLIGHT_INGEST_RUNS} runs (median above), rows/s':<44}"
              + ", ".join(f"{r:,.0f}" for r in sh["fl_ingest_runs_rows_s"]))
        print(f"{'Flight read SELECT *, rows/s':<44}{read:>14,.0f}   {sh['fl_read_mb_s']:,.0f} MB/s Arrow")
        print(f"{'  vs psycopg binary COPY TO, rows/s':<44}{sh['pgwire_copy_read_rows_s']:>14,.0f}{pg['pgwire_copy_read_rows_s']:>14,.0f}"
              f"{read / sh['pgwire_copy_read_rows_s']:>8.2f}x (Flight / our pgwire)")
    if "kafka" in only:
        print(f"\nKafka protocol ({args.kafka_messages:,} messages of {KAFKA_MESSAGE_BYTES} bytes, acks=all after fsync; goals from the issue)")
        print(f"{'kcat produce, messages/s':<44}{sh['kafka_produce_msgs_s']:>14,.0f}   goal 1,000,000: {sh['kafka_produce_msgs_s'] / 1e6:.2f}x")
        if "copy_rows_s" in pg:
            print(f"{'  vs PostgreSQL COPY FROM STDIN, rows/s':<44}{'':>14}{pg['copy_rows_s']:>14,.0f}{sh['kafka_produce_msgs_s'] / pg['copy_rows_s']:>8.2f}x")
        for name, label in (("kcat", "kcat consume to a file"), ("lean", "librdkafka consume (kafka_consume.c)")):
            if f"kafka_consume_{name}_msgs_s" not in sh:
                print(f"{label}: skipped (KAFKA_CONSUME_BIN not set; bench/run builds it)")
                continue
            rate = sh[f"kafka_consume_{name}_msgs_s"]
            print(f"{label + ', msg/s':<44}{rate:>14,.0f}   goal 2,000,000: {rate / 2e6:.2f}x")
            print(f"{f'  each of {KAFKA_CONSUME_RUNS} runs (median above), msg/s':<44}"
                  + ", ".join(f"{r:,.0f}" for r in sh[f"kafka_consume_{name}_runs_msgs_s"]))
            print(f"{'  server CPU per consumed message, µs':<44}{sh[f'kafka_consume_{name}_server_us_per_msg']:>14.3f}")
        print(f"{'produce latency p50 / p99, ms':<44}{sh['kafka_lat_p50_ms']:>9.2f} / {sh['kafka_lat_p99_ms']:.2f}"
              f"   at {sh['kafka_lat_rate']:,.0f} msg/s (goal p99 < 5 ms at 50,000)")
    memory_label = f"peak memory, {args.scan_rows / 1e6:g} M rows in, MiB" if "scan" in only else "peak server memory, MiB"
    print(f"{memory_label:<44}{sh['peak_mib']:>14.0f}{pg['peak_mib']:>14.0f}")
    if "scan" in only and sh.get("duckdb_scan_s"):
        print(f"{'DuckDB on the same Parquet segments, s':<44}{sh['duckdb_scan_s']:>14.3f}{'':>14}{sh['scan_s'] / sh['duckdb_scan_s']:>8.2f}x slower" if sh['scan_s'] > sh['duckdb_scan_s'] else f"{'DuckDB on the same Parquet segments, s':<44}{sh['duckdb_scan_s']:>14.3f}")
    elif "scan" in only:
        print("DuckDB: not installed (pip install duckdb) — skipped")
    print("\nratio: > 1 means StreamHouse is better (faster or higher throughput).")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
