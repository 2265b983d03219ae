"""The scale-out storage pieces, really started: segments on an S3-compatible server (moto)
and the catalog on PostgreSQL (the throwaway server scripts/test starts)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import psycopg
import pytest

from conftest import Server, free_port


@pytest.fixture
def s3(tmp_path):
    port = free_port()
    moto = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(tmp_path / "moto.log", "wb"), stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1"}
    os.environ.update(env)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    deadline = time.time() + 30
    while True:
        try:
            client.create_bucket(Bucket="lake")
            break
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    yield endpoint, client
    proc.terminate()
    proc.wait(timeout=10)


def test_segments_on_s3_survive_restart(tmp_path, s3):
    endpoint, client = s3
    os.environ["STREAMHOUSE_S3_ENDPOINT"] = endpoint
    try:
        server = Server(tmp_path / "data", ["--object-store", "s3://lake/warehouse"]).start()
        with server.connect() as c:
            c.execute("CREATE TABLE s3t (id BIGINT, v TEXT) WITH (partitions = 2)")
            c.execute("INSERT INTO s3t SELECT value, 'v' || value FROM generate_series(1, 5000)")
        deadline = time.time() + 15
        keys = []
        while time.time() < deadline and not keys:
            keys = [o["Key"] for o in client.list_objects_v2(Bucket="lake", Prefix="warehouse/").get("Contents", [])]
            time.sleep(0.2)
        assert keys and all(k.endswith(".parquet") for k in keys), keys
        server.kill9()
        server.start()
        with server.connect() as c:
            assert c.execute("SELECT count(*), sum(id) FROM s3t").fetchone() == (5000, 5000 * 5001 // 2)
        server.stop()
    finally:
        os.environ.pop("STREAMHOUSE_S3_ENDPOINT", None)


@pytest.mark.skipif(not os.environ.get("STREAMHOUSE_TEST_PG_URL"), reason="STREAMHOUSE_TEST_PG_URL not set (scripts/test sets it)")
def test_catalog_on_postgresql(tmp_path):
    admin_url = os.environ["STREAMHOUSE_TEST_PG_URL"]
    db = "sh_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    url = admin_url.rsplit("/", 1)[0] + "/" + db
    server = Server(tmp_path / "data", ["--catalog-url", url]).start()
    with server.connect() as c:
        c.execute("CREATE TABLE pgcat (id INT) WITH (partitions = 2)")
        c.execute("INSERT INTO pgcat VALUES (1), (2), (3)")
    time.sleep(1.5)  # a flush commits segments in the PostgreSQL catalog
    server.kill9()
    server.start()
    with server.connect() as c:
        assert c.execute("SELECT count(*) FROM pgcat").fetchone() == (3,)
    with psycopg.connect(url) as pg:
        tables = pg.execute("SELECT name FROM sh_tables").fetchall()
        assert ("pgcat",) in tables
    server.stop()
