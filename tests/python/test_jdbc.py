"""JDBC (pgjdbc from Debian's libpostgresql-jdbc-java): PreparedStatement writes and
reads, and DatabaseMetaData.getTables/getColumns, as JVM tools use them."""

import shutil
import subprocess
from pathlib import Path

import pytest

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).resolve().parent.parent / "jdbc" / "JdbcCheck.java"


@pytest.mark.skipif(not (JAR.exists() and shutil.which("javac")), reason="needs javac and libpostgresql-jdbc-java")
def test_jdbc_metadata_and_prepared_statements(server, tmp_path):
    subprocess.run(["javac", "-d", str(tmp_path), str(SOURCE)], check=True, capture_output=True)
    url = f"jdbc:postgresql://{server.host}:{server.port}/streamhouse"
    r = subprocess.run(["java", "-cp", f"{tmp_path}:{JAR}", "JdbcCheck", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert "count=2 sum=4.5" in out
    assert "table=public.jdbc_t" in out
    assert any(l.startswith("column=name:") for l in out)
