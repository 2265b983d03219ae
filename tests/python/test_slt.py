"""Runs every tests/slt/*.slt file against a fresh server over the Postgres protocol."""

import os
from pathlib import Path

import psycopg
import pytest

import slt
from conftest import Server

SLT_DIR = Path(__file__).resolve().parent.parent / "slt"
FILES = sorted(SLT_DIR.glob("*.slt"))


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_slt(tmp_path, path):
    server = Server(tmp_path / "data").start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            failures = slt.run_file(conn.pgconn, str(path), complete=os.environ.get("SLT_COMPLETE") == "1")
        assert not failures, "\n\n".join(failures)
    finally:
        server.stop(9)
