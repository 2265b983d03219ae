"""ASK with a local generative model (`--ask-model file.gguf`), end to end through the real
loader, tokenizer, generation and the executor's rules. The models are tiny Qwen2 networks
with hand-set weights whose greedy answer is known (tiny_gguf.py): what a real model would
write cannot be known here, what the server does with it can."""
import subprocess

import psycopg
import pytest
from psycopg import errors

from conftest import BIN, new_server
import tiny_gguf


def start_with_model(tmp_path, answer_words):
    model = tiny_gguf.build(tmp_path / "model.gguf", answer_words)
    server = new_server(tmp_path / "data", "--ask-model", str(model)).start()
    with server.connect() as c:
        c.execute("CREATE TABLE orders (id BIGINT, customer TEXT, amount DOUBLE PRECISION)")
        c.execute("INSERT INTO orders VALUES (1, 'ann', 10), (2, 'bob', 20), (3, 'ann', 5)")
    return server


def test_the_models_sql_is_checked_planned_and_run(tmp_path):
    server = start_with_model(tmp_path, ["SELECT", " count(*)", " FROM", " orders"])
    try:
        with server.connect() as c:
            notices = []
            c.add_notice_handler(lambda n: notices.append(n.message_primary))
            assert c.execute("ASK 'how many orders are there?'").fetchall() == [(3,)]
            assert any("local model model.gguf (qwen2)" in n and "orders" in n for n in notices), notices
            assert any(n.startswith("SQL: SELECT count(*) FROM orders LIMIT 1000") for n in notices), notices
            assert c.execute("ASK SQL 'how many orders?'").fetchall() == [("SELECT count(*) FROM orders",)]
    finally:
        server.stop()


def test_sql_that_does_not_plan_is_retried_once_then_refused(tmp_path):
    server = start_with_model(tmp_path, ["SELECT", " nope", " FROM", " orders"])
    try:
        with server.connect() as c:
            with pytest.raises(errors.UndefinedObject) as refused:
                c.execute("ASK 'how many orders?'")
            message = str(refused.value)
            assert refused.value.sqlstate == "42704"
            assert "failed twice" in message and "told that error" in message and "nope" in message, message
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,), "the session is fine afterwards"
    finally:
        server.stop()


def test_the_model_cannot_write(tmp_path):
    # A model that answers with a write gets the same rules as every translator.
    server = start_with_model(tmp_path, ["DELETE", " FROM", " orders"])
    try:
        with server.connect() as c:
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'remove the orders'")
            assert "only SELECT" in str(refused.value)
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    finally:
        server.stop()


def test_a_file_that_is_not_a_model_stops_the_server_at_start(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model at all")
    started = subprocess.run([BIN, "--data-dir", str(tmp_path / "d"), "--pg-addr", "127.0.0.1:0", "--flight-addr", "127.0.0.1:0",
                              "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
                              "--ask-model", str(bogus)], capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "ask_model" in started.stderr and "not a GGUF file" in started.stderr, started.stderr
