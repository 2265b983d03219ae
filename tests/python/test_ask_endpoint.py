"""ASK through an OpenAI-compatible endpoint (`--ask-endpoint`, `--ask-endpoint-model`,
`STREAMHOUSE_ASK_API_KEY`), end to end against a real one: llama.cpp's server (the PyPI
package llama-cpp-python) serving a tiny GGUF model whose greedy answer is known
(tiny_gguf.py). A hand-written HTTP server appears only to inject faults a real endpoint
shows rarely: a hang, and a body that is not a chat completion."""
import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from conftest import BIN, free_port, new_server
import tiny_gguf

MODEL_NAME = "tiny-sql"


class LlamaServer:
    """llama.cpp's OpenAI-compatible server over a tiny model answering `answer_words`."""

    def __init__(self, tmp_path, answer_words, api_key=None):
        model = tiny_gguf.build(tmp_path / "model.gguf", answer_words)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = tmp_path / "llama.log"
        args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_NAME,
                "--host", "127.0.0.1", "--port", str(self.port), "--chat_format", "chatml", "--n_ctx", "4096"]
        if api_key:
            args += ["--api_key", api_key]
        self.proc = subprocess.Popen(args, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # up, and asking for a key
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("llama.cpp server did not start:\n" + self.log_path.read_text())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def orders(server):
    with server.connect() as c:
        c.execute("CREATE TABLE orders (id BIGINT, customer TEXT, amount DOUBLE PRECISION)")
        c.execute("INSERT INTO orders VALUES (1, 'ann', 10), (2, 'bob', 20), (3, 'ann', 5)")


def start_asking(tmp_path, url, api_key=None):
    env = os.environ.copy()
    env.pop("STREAMHOUSE_ASK_API_KEY", None)
    if api_key:
        env["STREAMHOUSE_ASK_API_KEY"] = api_key
    server = new_server(tmp_path / "data", "--ask-endpoint", url, "--ask-endpoint-model", MODEL_NAME)
    server.env = env
    return server.start()


@pytest.fixture
def notices():
    return []


def connect_with_notices(server, notices):
    c = server.connect()
    c.add_notice_handler(lambda n: notices.append(n.message_primary))
    return c


def test_the_endpoints_sql_is_checked_planned_and_run(tmp_path, notices):
    # Chain words are distinct tokens: "customer" and "spent" appear twice, so spelled apart.
    llama = LlamaServer(tmp_path, ["SELECT", " customer,", " sum(amount)", " AS", " spent", " FROM", " orders", " GROUP BY", " customer", " ORDER BY", " 2", " DESC"])
    server = start_asking(tmp_path, llama.url)
    try:
        orders(server)
        with connect_with_notices(server, notices) as c:
            assert c.execute("ASK 'how much did each customer spend?'").fetchall() == [("bob", 20.0), ("ann", 15.0)]
            who = f"the model {MODEL_NAME} at {llama.url}/chat/completions"
            assert any(who in n and "orders" in n for n in notices), notices
            assert any(n.startswith("SQL: SELECT customer, sum(amount) AS spent FROM orders") and "LIMIT 1000" in n for n in notices), notices
            sql = c.execute("ASK SQL 'spend per customer'").fetchone()[0]
            assert sql == "SELECT customer, sum(amount) AS spent FROM orders GROUP BY customer ORDER BY 2 DESC"
        # The request really went to llama.cpp, once per question.
        served = llama.log_path.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')
        assert served == 2, llama.log_path.read_text()[-2000:]
    finally:
        server.stop()
        llama.stop()


def test_sql_that_does_not_plan_is_retried_once_then_refused(tmp_path):
    llama = LlamaServer(tmp_path, ["SELECT", " nope", " FROM", " orders"])
    server = start_asking(tmp_path, llama.url)
    try:
        orders(server)
        with server.connect() as c:
            with pytest.raises(errors.UndefinedObject) as refused:
                c.execute("ASK 'how many orders?'")
            assert "failed twice" in str(refused.value) and "nope" in str(refused.value)
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,)
        assert llama.log_path.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200') == 2, "asked, then asked again with the error"
    finally:
        server.stop()
        llama.stop()


def test_the_endpoint_cannot_write(tmp_path):
    llama = LlamaServer(tmp_path, ["DELETE", " FROM", " orders"])
    server = start_asking(tmp_path, llama.url)
    try:
        orders(server)
        with server.connect() as c:
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'remove the orders'")
            assert "only SELECT" in str(refused.value)
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    finally:
        server.stop()
        llama.stop()


def test_the_api_key_is_sent_and_a_wrong_one_is_named(tmp_path):
    llama = LlamaServer(tmp_path, ["SELECT", " count(*)", " FROM", " orders"], api_key="sk-right")
    right = start_asking(tmp_path / "right", llama.url, api_key="sk-right")
    wrong = start_asking(tmp_path / "wrong", llama.url, api_key="sk-wrong")
    try:
        orders(right)
        orders(wrong)
        with right.connect() as c:
            assert c.execute("ASK 'how many orders?'").fetchall() == [(3,)]
        with wrong.connect() as c:
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'how many orders?'")
            message = str(refused.value)
            assert "401" in message and "ask_api_key" in message, message
            assert "sk-wrong" not in message and "sk-wrong" not in wrong.log()
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,), "the session is fine afterwards"
    finally:
        right.stop()
        wrong.stop()
        llama.stop()


class Faulty(http.server.BaseHTTPRequestHandler):
    """Answers chat completions badly: `mode` is "hang" or "html"."""
    mode = "html"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        if Faulty.mode == "hang":
            time.sleep(20)
            return
        body = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_endpoint_faults_are_refusals_that_say_what_happened(tmp_path):
    faulty = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Faulty)
    faulty.daemon_threads = True
    threading.Thread(target=faulty.serve_forever, daemon=True).start()
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    html = start_asking(tmp_path / "html", f"http://127.0.0.1:{faulty.server_address[1]}/v1")
    down = start_asking(tmp_path / "down", unreachable)
    try:
        for server in (html, down):
            orders(server)
        with html.connect() as c:
            Faulty.mode = "html"
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'how many orders?'")
            assert "not a chat completion" in str(refused.value) and "502 Bad Gateway" in str(refused.value)
            Faulty.mode = "hang"
            started = time.monotonic()
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'how many orders?'")
            assert "no answer from" in str(refused.value) and "within 12" in str(refused.value), str(refused.value)
            assert time.monotonic() - started < 20, "the generation deadline holds"
            assert c.execute("SELECT count(*) FROM orders").fetchone() == (3,)
        with down.connect() as c:
            with pytest.raises(psycopg.Error) as refused:
                c.execute("ASK 'how many orders?'")
            assert "cannot reach" in str(refused.value) and unreachable in str(refused.value), str(refused.value)
    finally:
        html.stop()
        down.stop()
        faulty.shutdown()


@pytest.mark.parametrize("args,says", [
    (["--ask-endpoint", "http://127.0.0.1:9/v1"], "must be set together"),
    (["--ask-endpoint", "ftp://127.0.0.1/v1", "--ask-endpoint-model", "m"], "http:// or https://"),
    (["--ask-endpoint", "http://127.0.0.1:9/v1", "--ask-endpoint-model", "m", "--ask-model", "/x.gguf"], "set one"),
])
def test_a_bad_endpoint_setting_stops_the_server_at_start(tmp_path, args, says):
    started = subprocess.run([BIN, "--data-dir", str(tmp_path / "d"), "--pg-addr", "127.0.0.1:0", "--flight-addr", "127.0.0.1:0",
                              "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", *args],
                             capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert says in started.stderr, started.stderr
