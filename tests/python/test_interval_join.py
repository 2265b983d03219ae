"""Interval joins of two streams bounded by watermarks, over psycopg.

`imps` and `clicks` both have `WATERMARK FOR ts AS ts - INTERVAL '10 minutes'`; the views
join a click to the impressions of its ad shown at most 3 minutes before it. The oracle
is the same join run as a batch SELECT over the rows that were not late: the test writes
rows in waves whose times move forward (each wave within the delay of the last), and
marks the rows it writes far behind (a day) as `late`. The views must equal the oracle
after every wave and after kill -9, and must not keep every row: a row is let go once no
row the watermark still admits can match it (SHOW MATERIALIZED VIEWS' held_rows)."""

import random
import signal
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import Server, show_views as views, wait_views_applied as wait_applied

EPOCH = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
WAVE_STEP = timedelta(minutes=4)
WAVE_SPAN_S = 300  # each wave's times spread over 5 minutes: out of order, within the delay
ADS = 40

JOIN = ("FROM imps i JOIN clicks c ON c.ad = i.ad AND c.ts BETWEEN i.ts AND i.ts + INTERVAL '3 minutes'")
VIEWS = {
    "matched": f"SELECT i.id AS imp, c.id AS click {JOIN}",
    # The bound in WHERE instead of ON: the same rows, the same rows held.
    "matched_where": "SELECT i.id AS imp, c.id AS click FROM imps i JOIN clicks c ON c.ad = i.ad "
                     "WHERE c.ts >= i.ts AND c.ts <= i.ts + INTERVAL '3 minutes'",
    "per_ad": f"SELECT i.ad, count(*) AS clicks, max(c.ts) AS last_click {JOIN} GROUP BY i.ad",
}
ORACLES = {
    "matched": f"SELECT i.id, c.id {JOIN} WHERE NOT i.late AND NOT c.late",
    "matched_where": f"SELECT i.id, c.id {JOIN} WHERE NOT i.late AND NOT c.late",
    "per_ad": f"SELECT i.ad, count(*), max(c.ts) {JOIN} WHERE NOT i.late AND NOT c.late GROUP BY i.ad",
}


def start(tmp_path):
    server = Server(tmp_path / "data").start()
    with server.connect() as conn:
        for table in ("imps", "clicks"):
            conn.execute(f"CREATE TABLE {table} (id BIGINT, ad INT, ts TIMESTAMPTZ, late BOOLEAN, "
                         "WATERMARK FOR ts AS ts - INTERVAL '10 minutes')")
        for name, sql in VIEWS.items():
            conn.execute(f"CREATE MATERIALIZED VIEW {name} AS {sql}")
    return server


class Waves:
    """Writes waves of impressions and clicks, and counts what it wrote."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.next_id = 1
        self.wave = 0
        self.rows = 0
        self.late = 0

    def write(self, conn, count=200, late=0):
        base = EPOCH + self.wave * WAVE_STEP
        for table in ("imps", "clicks"):
            rows = []
            for _ in range(count):
                rows.append((self.next_id, self.rng.randrange(ADS), base + timedelta(seconds=self.rng.uniform(0, WAVE_SPAN_S)), False))
                self.next_id += 1
            # Far behind everything written before: late for every view. They would match
            # each other (same ad, same time) if they were kept.
            for n in range(late):
                rows.append((self.next_id, n % ADS, EPOCH - timedelta(days=1), True))
                self.next_id += 1
            self.rng.shuffle(rows)
            values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
            conn.execute(f"INSERT INTO {table} VALUES {values}", [v for row in rows for v in row])
            self.rows += len(rows)
            self.late += late if self.wave > 0 else 0
        self.wave += 1


    def just_behind(self, conn, watermark, count=5):
        """Impressions a minute behind the watermark (late, yet recent enough that an
        interval join would still keep them if it let them in), and clicks on time that
        would match them."""
        for n in range(count):
            ad = self.rng.randrange(ADS)
            conn.execute("INSERT INTO imps VALUES (%s, %s, %s, true)", (self.next_id, ad, watermark - timedelta(minutes=1)))
            conn.execute("INSERT INTO clicks VALUES (%s, %s, %s, false)", (self.next_id + 1, ad, watermark + timedelta(seconds=30)))
            self.next_id += 2
            self.rows += 2
            self.late += 1


def check(conn, late_expected=None):
    shown = wait_applied(conn)
    for name, oracle in ORACLES.items():
        got = Counter(conn.execute(f"SELECT * FROM {name}").fetchall())
        want = Counter(conn.execute(oracle).fetchall())
        assert got == want, f"{name}: {len(got)} rows vs oracle {len(want)}; missing {list((want - got).items())[:3]}, extra {list((got - want).items())[:3]}"
        if late_expected is not None:
            assert shown[name]["late_rows"] == late_expected, shown[name]
        # Exactly the rows a click or an impression the watermark admits may still match are
        # kept: impressions up to 3 minutes behind it, clicks from it on.
        watermark = shown[name]["watermark"]
        if watermark is not None:
            matchable = conn.execute(
                "SELECT (SELECT count(*) FROM imps WHERE NOT late AND ts + INTERVAL '3 minutes' >= %s)"
                " + (SELECT count(*) FROM clicks WHERE NOT late AND ts >= %s)", (watermark, watermark)).fetchone()[0]
            assert shown[name]["held_rows"] == matchable, (name, shown[name]["held_rows"], matchable)
    return shown


def test_an_interval_join_equals_the_batch_join_and_lets_old_rows_go(tmp_path):
    server = start(tmp_path)
    try:
        waves = Waves(seed=7)
        with server.connect() as conn:
            # The first wave cannot be late (nothing before it); later waves carry late rows.
            for wave in range(14):
                waves.write(conn, late=0 if wave == 0 else 5)
                shown = check(conn, late_expected=waves.late)
            assert conn.execute("SELECT count(*) FROM matched").fetchone()[0] > 500, "the data joins"
            # Rows no admitted row can match are let go: the watermark trails the newest
            # rows by 10 minutes and an impression is matched up to 3 minutes later, so
            # about 4 waves of each table are kept, not 14.
            kept = shown["matched"]["held_rows"]
            assert 0 < kept < waves.rows * 0.45, (kept, waves.rows)
            assert shown["per_ad"]["held_rows"] == kept
            # A click arriving now still finds the impressions it may match.
            newest = conn.execute("SELECT id, ad, ts FROM imps ORDER BY ts DESC LIMIT 1").fetchone()
            conn.execute("INSERT INTO clicks VALUES (%s, %s, %s, false)", (10**9, newest[1], newest[2] + timedelta(minutes=2)))
            check(conn)
            assert conn.execute("SELECT count(*) FROM matched WHERE click = %s", (10**9,)).fetchone()[0] >= 1
    finally:
        server.stop(signal.SIGKILL)


def test_the_first_rows_of_the_slower_side_are_not_late(tmp_path):
    """Impressions for 30 minutes arrive before any click: the watermark stays unknown
    until the clicks' table has a row, so the first clicks (minutes behind) still join."""
    server = start(tmp_path)
    try:
        with server.connect() as conn:
            imps = [(n, n % 5, EPOCH + timedelta(minutes=n), False) for n in range(30)]
            conn.execute("INSERT INTO imps VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(imps)), [v for r in imps for v in r])
            wait_applied(conn)
            clicks = [(100 + n, n % 5, EPOCH + timedelta(minutes=n, seconds=30), False) for n in range(30)]
            conn.execute("INSERT INTO clicks VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(clicks)), [v for r in clicks for v in r])
            check(conn, late_expected=0)
            assert conn.execute("SELECT count(*) FROM matched").fetchone()[0] == 30
    finally:
        server.stop(signal.SIGKILL)


def test_a_join_without_a_time_bound_keeps_every_row(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        with server.connect() as conn:
            for table in ("a", "b"):
                conn.execute(f"CREATE TABLE {table} (k INT, ts TIMESTAMPTZ, WATERMARK FOR ts AS ts - INTERVAL '1 minute')")
            conn.execute("CREATE MATERIALIZED VIEW ab AS SELECT a.k, a.ts AS a_ts, b.ts AS b_ts FROM a JOIN b ON a.k = b.k")
            for n in range(5):
                t = EPOCH + timedelta(hours=n)
                conn.execute("INSERT INTO a VALUES (%s, %s)", (n, t))
                conn.execute("INSERT INTO b VALUES (%s, %s)", (n, t))
            conn.execute("INSERT INTO b VALUES (0, %s)", (EPOCH + timedelta(hours=5),))
            shown = wait_applied(conn)
            # Any later b row may match any a row: nothing can be let go.
            assert shown["ab"]["held_rows"] == 11
            assert sorted(conn.execute("SELECT k FROM ab").fetchall()) == [(0,), (0,), (1,), (2,), (3,), (4,)]
    finally:
        server.stop(signal.SIGKILL)


def test_exactly_once_and_the_same_rows_let_go_across_kill9(tmp_path):
    """Waves written without waiting, the server killed at random moments while the views
    apply them: after each restart the views equal the oracle, late rows stay dropped, and
    rows written after the restart join with the rows kept before it."""
    server = start(tmp_path)
    waves = Waves(seed=11)
    try:
        for round_ in range(3):
            with server.connect() as conn:
                for _ in range(4):
                    waves.write(conn, count=600, late=0 if waves.wave == 0 else 7)
            time.sleep(random.uniform(0, 0.05))
            server.kill9()
            server.start()
            with server.connect() as conn:
                shown = check(conn, late_expected=waves.late)
                # Late rows a replay that did not judge them again would keep: the restart
                # right after them must drop them again.
                waves.just_behind(conn, shown["matched"]["watermark"])
                check(conn, late_expected=waves.late)
            server.kill9()
            server.start()
            with server.connect() as conn:
                check(conn, late_expected=waves.late)
        with server.connect() as conn:
            waves.write(conn, count=300, late=3)
            check(conn, late_expected=waves.late)
    finally:
        server.stop(signal.SIGKILL)
