"""Checkpoints of an aggregating view's groups, over psycopg: once the state rows written
since the last checkpoint reach twice the number of groups, every group's state is
written again (in pieces of 64 Ki groups) and a marker follows; recovery reads the state
table from the latest marker, and the stored segments before it are deleted. The view
must equal its batch query after kill -9 at any moment, checkpoints included."""

import io
import random
import signal
import time
from collections import Counter

from conftest import Server, crash_rounds, wait_views_applied as wait_applied

GROUPS = 70_000  # more than one piece of a checkpoint (65,536 groups)
VIEW = "SELECT k, count(*) AS n, sum(v) AS total, min(v) AS low, max(v) AS high FROM ev GROUP BY k"


def copy_rows(conn, rng, count):
    data = io.StringIO()
    for _ in range(count):
        data.write(f"{rng.randrange(GROUPS)}\t{rng.randrange(-1000, 1000)}\n")
    with conn.cursor().copy("COPY ev FROM STDIN") as cp:
        cp.write(data.getvalue())


def check(conn):
    wait_applied(conn)
    got = Counter(conn.execute("SELECT * FROM sums").fetchall())
    want = Counter(conn.execute(VIEW).fetchall())
    assert got == want, f"missing {list((want - got).items())[:3]}, extra {list((got - want).items())[:3]}"


def test_restarts_read_the_groups_from_the_latest_checkpoint(tmp_path):
    server = Server(tmp_path / "data").start()
    rng = random.Random(29)
    try:
        with server.connect() as conn:
            conn.execute("CREATE TABLE ev (k INT, v BIGINT)")
            conn.execute(f"CREATE MATERIALIZED VIEW sums AS {VIEW}")

        def write(conn):
            for _ in range(4):
                copy_rows(conn, rng, 100_000)
                time.sleep(0.3)

        crash_rounds(server, write, check, max_pause_s=0.3)
        with server.connect() as conn:
            # A last round without a crash, flushed to segments before the next checkpoint.
            for _ in range(4):
                copy_rows(conn, rng, 100_000)
                time.sleep(0.7)
            check(conn)
            markers = conn.execute("SELECT next_offset FROM streamhouse.mv_progress WHERE partition = -1 ORDER BY _offset").fetchall()
            assert len(markers) >= 3, markers
            state = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'streamhouse' AND table_name LIKE 'mv_state_%'").fetchone()[0]
            oldest, rows = conn.execute(f'SELECT min(_offset), count(*) FROM streamhouse."{state}"').fetchone()
            # The segments before a checkpoint were deleted: the table starts later than 0,
            # and it holds fewer rows than were written.
            assert 0 < oldest <= markers[-1][0], (oldest, markers)
            assert rows < markers[-1][0], (rows, markers)
    finally:
        server.stop(signal.SIGKILL)
