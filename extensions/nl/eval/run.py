#!/usr/bin/env python3
"""Evaluation of `ASK` (English question -> SQL) on the question set in this folder.

    python extensions/nl/eval/run.py [--bin PATH] [--split dev|test|all] [--show-failures] [--json OUT]
    python extensions/nl/eval/run.py --dsn "host=127.0.0.1 port=5432 user=x dbname=streamhouse"

Starts the server on port 0 in a temporary data directory (or uses --dsn), loads every
schema (schemas/<name>.sql, then schemas/<name>.comments.sql), then for each question runs
`ASK SQL '<question>'`, executes the SQL it returns next to the gold SQL and compares the
results. See README.md for the comparison rules. Exit status is 0 whenever the evaluation
ran; 2 when the server could not be started or reached, or a data file failed to load.

--oracle (self-test of the runner, hidden from --help) skips ASK, uses the gold SQL as the
generated SQL and refuses exactly the unanswerable questions: it must report 100% and 0
invented names. It also checks the gold set itself: every gold query returns rows, ORDER BY
results have no ties, float results are not on a rounding edge, and queries using now()
give the same result with the clock shifted by +-10 minutes.
"""

import argparse
import datetime as dt
import decimal
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
SCHEMAS = ["web", "shop", "iot"]
DEFAULT_BIN = os.environ.get("STREAMHOUSE_BIN",
                             str(Path.home() / ".cache/streamhouse/target/release/streamhouse"))
REFUSAL_SQLSTATE = "42704"
INVENTED_SQLSTATES = {"42P01", "42703"}  # undefined table, undefined column
SIG_DIGITS = 6
MAX_ELAPSED_S = 9 * 60  # relative-time data has a 10 minute guard band around every boundary
SHOW_ROWS = 5


# ------------------------------------------------------------------------------ server

class Server:
    def __init__(self, binary, extra_args=()):
        self.binary = binary
        self.extra_args = list(extra_args)
        self.tmp = tempfile.TemporaryDirectory(prefix="streamhouse-nl-eval-")
        self.data_dir = Path(self.tmp.name) / "data"
        self.log_path = Path(self.tmp.name) / "server.log"
        self.proc = None

    def start(self, timeout=30):
        self.data_dir.mkdir(parents=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data_dir), "--pg-addr", "127.0.0.1:0",
             "--flight-addr", "127.0.0.1:0", "--kafka-addr", "127.0.0.1:0",
             "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", *self.extra_args],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        listeners = self.data_dir / "listeners.json"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if listeners.exists():
                try:
                    host, port = json.loads(listeners.read_text())["pg"].rsplit(":", 1)
                    return f"host={host} port={port} user=eval dbname=streamhouse"
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start within {timeout}s:\n{self.log()}")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


# ------------------------------------------------------------------------------ SQL helpers

def split_statements(text):
    """Split a SQL file on top-level semicolons (quotes and -- comments respected)."""
    out, buf, i, n = [], [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            j = i + 1
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            buf.append(text[i:j + 1])
            i = j + 1
        elif c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
            i += 1
        else:
            buf.append(c)
            i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


LITERAL_RE = re.compile(r"'((?:[^']|'')*)'")


def string_literals(sql):
    return [m.group(1).replace("''", "'") for m in LITERAL_RE.finditer(sql)]


def without_literals(sql):
    return LITERAL_RE.sub("''", sql)


def has_order_by(sql):
    return re.search(r"\border\s+by\b", without_literals(sql), re.I) is not None


TIME_UNITS = ("microsecond|millisecond|second|sec|minute|min|hour|hr|day|week|month|mon|"
              "quarter|year|yr|decade|century|millennium|s|m|h|d|w|y")
INTERVAL_RE = re.compile(rf"^\s*(?:[+-]?\d+(?:\.\d+)?\s*(?:{TIME_UNITS})s?\s*,?\s*)+(?:ago)?\s*$", re.I)
DATETIME_RE = re.compile(r"^\s*(\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?"
                         r"(Z|[+-]\d{2}(:?\d{2})?)?|\d{2}:\d{2}(:\d{2}(\.\d+)?)?)\s*$", re.I)
DATE_PARTS = {"microsecond", "microseconds", "millisecond", "milliseconds", "second", "seconds",
              "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month",
              "months", "quarter", "quarters", "year", "years", "decade", "century",
              "millennium", "dow", "doy", "isodow", "isoyear", "epoch", "utc", "+00:00", "z"}


def is_time_literal(s):
    return bool(INTERVAL_RE.match(s) or DATETIME_RE.match(s) or s.strip().lower() in DATE_PARTS)


def invented_literals(sql, question, stored):
    """String literals of `sql` found neither in the question nor among stored text values."""
    q = question.lower()
    bad = []
    for lit in string_literals(sql):
        if is_time_literal(lit):
            continue
        if "%" in lit or ("_" in lit and lit not in stored["exact"]):
            # a LIKE pattern: each fixed piece must come from the question or the data
            pieces = [p for p in re.split(r"[%_]+", lit.lower()) if p]
            if all(p in q or any(p in v for v in stored["lower"]) for p in pieces):
                continue
        elif lit.lower() in q or lit in stored["exact"]:
            continue
        bad.append(lit)
    return bad


# ------------------------------------------------------------------------------ results

def normalize(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return v
    if isinstance(v, decimal.Decimal):
        v = float(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return ("float", str(v))
        if v.is_integer() and abs(v) < 2 ** 53:
            return int(v)
        # Two steps: 12 digits first absorbs summation-order noise (so 20647.449999999997 and
        # 20647.450000000004 both become 20647.45), then 6 significant digits.
        r = float(f"{float(f'{v:.12g}'):.{SIG_DIGITS}g}")
        return int(r) if r.is_integer() and abs(r) < 2 ** 53 else r
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return ("interval", v.total_seconds())
    if isinstance(v, (list, tuple)):
        return tuple(normalize(x) for x in v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return v


def normalize_rows(rows):
    return [tuple(normalize(v) for v in row) for row in rows]


def same_result(gold, gen, ordered):
    """gold/gen: (ncols, rows normalized). Any column permutation of gen may match."""
    (gn, grows), (hn, hrows) = gold, gen
    if len(grows) != len(hrows):
        return False, f"row count {len(hrows)} != {len(grows)}"
    if gn != hn:
        return False, f"column count {hn} != {gn}"
    if not grows:
        return True, ""
    gcols, hcols = list(zip(*grows)), list(zip(*hrows))
    sig = (lambda c: tuple(c)) if ordered else (lambda c: Counter(c))
    hsig = [sig(c) for c in hcols]
    candidates = [[j for j in range(hn) if hsig[j] == sig(gcols[i])] for i in range(gn)]
    if any(not c for c in candidates):
        return False, "values differ"
    want = grows if ordered else Counter(grows)

    def rows_with(perm):
        rows = [tuple(r[j] for j in perm) for r in hrows]
        return rows if ordered else Counter(rows)

    perm, used = [], set()

    def search(i):
        if i == gn:
            return rows_with(perm) == want
        for j in candidates[i]:
            if j not in used:
                used.add(j)
                perm.append(j)
                if search(i + 1):
                    return True
                perm.pop()
                used.discard(j)
        return False

    if search(0):
        return True, ""
    return False, "rows differ" + (" (or their order)" if ordered else "")


class Db:
    def __init__(self, dsn, timeout_s):
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.conn = psycopg.connect(dsn, autocommit=True)

    def reconnect(self):
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = psycopg.connect(self.dsn, autocommit=True)

    def run(self, sql):
        """-> (ncols, rows) or raises psycopg.Error (with .sqlstate) / TimeoutError."""
        timer = threading.Timer(self.timeout_s, self._cancel)
        timer.start()
        try:
            cur = self.conn.execute(sql)
            if cur.description is None:
                return 0, []
            return len(cur.description), cur.fetchall()
        except psycopg.OperationalError as e:
            if self.conn.closed or self.conn.broken:
                try:
                    self.reconnect()
                except psycopg.Error:
                    pass
            raise e
        finally:
            timer.cancel()

    def _cancel(self):
        try:
            self.conn.cancel_safe(timeout=5)
        except Exception:
            pass


def err_text(e):
    state = getattr(e, "sqlstate", None)
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"[{state}] {msg}" if state else msg


# ------------------------------------------------------------------------------ loading

CREATE_RE = re.compile(r"create\s+table\s+(?:if\s+not\s+exists\s+)?(\w+)\s*\((.*)\)\s*$", re.I | re.S)


def schema_tables(statements):
    """{table: [(column, type)]} from the CREATE TABLE statements of a data file."""
    tables = {}
    for s in statements:
        m = CREATE_RE.match(s)
        if m:
            cols = []
            for part in m.group(2).split(","):
                bits = part.split()
                if bits:
                    cols.append((bits[0].lower(), " ".join(bits[1:]).lower()))
            tables[m.group(1).lower()] = cols
    return tables


def load(db, names, drop_first, load_data=True):
    """Loads data then comments files. -> {schema: {"tables":..., "exact": set, "lower": set}}"""
    meta = {}
    for name in names:
        statements = split_statements((HERE / "schemas" / f"{name}.sql").read_text())
        tables = schema_tables(statements)
        meta[name] = {"tables": tables}
        if not load_data:
            continue
        if drop_first:
            for t in tables:
                db.run(f"DROP TABLE IF EXISTS {t}")
        for s in statements:
            try:
                db.run(s)
            except psycopg.Error as e:
                raise RuntimeError(f"loading schemas/{name}.sql failed: {err_text(e)}\n  in: {s[:200]}")
    for name in names if load_data else []:
        path = HERE / "schemas" / f"{name}.comments.sql"
        if not path.exists():
            continue
        statements = split_statements(path.read_text())
        failed = []
        for s in statements:
            try:
                db.run(s)
            except psycopg.Error as e:
                failed.append(err_text(e))
        if failed:
            print(f"warning: {len(failed)} of {len(statements)} statements of {path.name} failed "
                  f"(first: {failed[0]})")
    for name in names:
        exact = set()
        for t, cols in meta[name]["tables"].items():
            for c, typ in cols:
                if typ.split("(")[0] in ("text", "varchar", "character", "char", "string"):
                    _, rows = db.run(f"SELECT DISTINCT {c} FROM {t}")
                    exact.update(r[0] for r in rows if r[0] is not None)
        meta[name]["exact"] = exact
        meta[name]["lower"] = {v.lower() for v in exact}
    return meta


# ------------------------------------------------------------------------------ gold checks (--oracle)

def split_top(text, sep=","):
    out, depth, buf = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf).strip())
    return out


def order_key_query(sql):
    """Gold SQL with its ORDER BY keys prepended to the select list (limit + 1), or None."""
    m = re.match(r"^\s*select\s+(.*?)\s+from\s+(.*?)\s+order\s+by\s+(.*?)(?:\s+limit\s+(\d+))?\s*$",
                 sql, re.I | re.S)
    if not m:
        return None, None
    items, rest, order, limit = m.groups()
    aliases = {}
    for item in split_top(items):
        am = re.match(r"^(.*?)\s+as\s+(\w+)$", item, re.I | re.S)
        if am:
            aliases[am.group(2).lower()] = am.group(1)
    keys = []
    for k in split_top(order):
        k = re.sub(r"\s+(asc|desc)(\s+nulls\s+(first|last))?$", "", k, flags=re.I).strip()
        if k.isdigit():
            k = split_top(items)[int(k) - 1]
            k = re.sub(r"\s+as\s+\w+$", "", k, flags=re.I)
        keys.append(aliases.get(k.lower(), k))
    lim = f" LIMIT {int(limit) + 1}" if limit else ""
    q = f"SELECT {', '.join(keys)}, {items} FROM {rest} ORDER BY {order}{lim}"
    return q, (int(limit) if limit else None, len(keys))


def fragile_floats(rows):
    out = []
    for row in rows:
        for v in row:
            if isinstance(v, decimal.Decimal):
                v = float(v)
            if isinstance(v, float) and not v.is_integer() and math.isfinite(v):
                lo, hi = normalize(v * (1 - 1e-13)), normalize(v * (1 + 1e-13))
                if lo != hi:
                    out.append(v)
    return out


def check_gold(db, q, gold_raw):
    problems = []
    ncols, rows = gold_raw
    if not rows:
        problems.append("returns no rows")
    if fragile_floats(rows):
        problems.append(f"float result on a rounding edge: {fragile_floats(rows)[:3]}")
    sql = q["sql"]
    if has_order_by(sql):
        kq, info = order_key_query(sql)
        if kq is None:
            problems.append("cannot parse ORDER BY for the tie check")
        else:
            limit, nkeys = info
            try:
                _, krows = db.run(kq)
                keys = [tuple(normalize(v) for v in r[:nkeys]) for r in krows]
                full = [tuple(normalize(v) for v in r[nkeys:]) for r in krows]
                for i in range(len(keys) - 1):
                    if keys[i] == keys[i + 1] and (limit is None or i < limit) and full[i] != full[i + 1]:
                        where = "at the LIMIT cut-off" if limit is not None and i == limit - 1 else "between rows"
                        problems.append(f"tie {where}: {keys[i]}")
                        break
            except psycopg.Error as e:
                problems.append(f"tie check query failed: {err_text(e)}: {kq}")
    if re.search(r"\bnow\(\)", sql, re.I):
        base = normalize_rows(rows)
        for shift in ("+", "-"):
            shifted = re.sub(r"\bnow\(\)", f"(now() {shift} INTERVAL '600 seconds')", sql, flags=re.I)
            try:
                n2, r2 = db.run(shifted)
                ok, why = same_result((ncols, base), (n2, normalize_rows(r2)), has_order_by(sql))
                if not ok:
                    problems.append(f"result changes when now() moves {shift}10 minutes ({why})")
            except psycopg.Error as e:
                problems.append(f"shifted query failed: {err_text(e)}")
    return problems


# ------------------------------------------------------------------------------ evaluation

OUTCOMES = ["correct", "refused_answerable", "refused_unanswerable", "wrong", "errors"]


def evaluate(db, q, meta, oracle):
    """-> dict(outcome, invented: list, generated, detail, gold_rows, gen_rows, gold_problems)"""
    res = {"id": q["id"], "invented": [], "generated": None, "detail": "", "gold_rows": None,
           "gen_rows": None, "gold_problems": []}
    refuse = bool(q.get("refuse"))
    question = q["question"]
    gold = None
    if not refuse:
        try:
            gold_raw = db.run(q["sql"])
            gold = (gold_raw[0], normalize_rows(gold_raw[1]))
            res["gold_rows"] = gold_raw[1][:SHOW_ROWS]
            if oracle:
                res["gold_problems"] = check_gold(db, q, gold_raw)
        except psycopg.Error as e:
            res["gold_problems"] = [f"gold SQL failed: {err_text(e)}"]
            res["outcome"], res["detail"] = "errors", f"gold SQL failed: {err_text(e)}"
            return res

    # 1. ASK
    if oracle:
        if refuse:
            res["outcome"], res["detail"] = "refused_unanswerable", "(oracle refuses)"
            return res
        generated = q["sql"]
    else:
        try:
            n, rows = db.run("ASK SQL '" + question.replace("'", "''") + "'")
        except psycopg.Error as e:
            if getattr(e, "sqlstate", None) == REFUSAL_SQLSTATE:
                res["outcome"] = "refused_unanswerable" if refuse else "refused_answerable"
                res["detail"] = "refused: " + err_text(e)
            else:
                res["outcome"], res["detail"] = "errors", "ASK failed: " + err_text(e)
            return res
        if n != 1 or len(rows) != 1 or not isinstance(rows[0][0], str):
            res["outcome"] = "errors"
            res["detail"] = f"ASK returned {len(rows)} row(s) x {n} column(s), expected one text value"
            return res
        generated = rows[0][0].strip().rstrip(";")
    res["generated"] = generated
    res["invented"] = invented_literals(generated, question, meta[q["schema"]])

    # 2. the generated SQL (only queries are run: a stray DROP would spoil the rest of the run)
    if not re.match(r"^[\s(]*(select|with)\b", generated, re.I):
        res["outcome"] = "wrong" if refuse else "errors"
        res["detail"] = "generated SQL is not a query (SELECT or WITH); not run"
        return res
    try:
        gen_raw = db.run(generated)
    except psycopg.Error as e:
        state = getattr(e, "sqlstate", None)
        if state in INVENTED_SQLSTATES:
            res["invented"].append(err_text(e))
        res["outcome"] = "wrong" if refuse else "errors"
        res["detail"] = "generated SQL failed: " + err_text(e)
        return res
    res["gen_rows"] = gen_raw[1][:SHOW_ROWS]
    if refuse:
        res["outcome"], res["detail"] = "wrong", "answered an unanswerable question"
        return res
    ok, why = same_result(gold, (gen_raw[0], normalize_rows(gen_raw[1])), has_order_by(q["sql"]))
    res["outcome"] = "correct" if ok else "wrong"
    res["detail"] = why
    return res


def summarize(results, questions):
    s = {"total": len(results), "answerable": 0, "correct": 0, "accuracy": 0.0,
         "refused_answerable": 0, "refused_unanswerable": 0, "unanswerable": 0,
         "wrong": 0, "errors": 0, "invented": 0}
    for r in results:
        q = questions[r["id"]]
        if q.get("refuse"):
            s["unanswerable"] += 1
        else:
            s["answerable"] += 1
        s[r["outcome"]] += 1
        if r["invented"]:
            s["invented"] += 1
    s["accuracy"] = round(s["correct"] / s["answerable"], 4) if s["answerable"] else 0.0
    return s


def print_table(rows):
    cols = ["", "total", "answerable", "correct", "accuracy", "refused_answerable",
            "unanswerable", "refused_unanswerable", "wrong", "errors", "invented"]
    heads = ["", "total", "answerable", "correct", "acc", "refused(ans)", "unanswerable",
             "refused(unans)", "wrong", "errors", "invented"]
    table = [heads]
    for name, s in rows:
        table.append([name] + [f"{s[c]:.1%}" if c == "accuracy" else str(s[c]) for c in cols[1:]])
    widths = [max(len(r[i]) for r in table) for i in range(len(heads))]
    for k, r in enumerate(table):
        print("  ".join(x.ljust(widths[i]) if i == 0 else x.rjust(widths[i]) for i, x in enumerate(r)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def fmt_rows(rows):
    if rows is None:
        return "      (none)"
    if not rows:
        return "      (no rows)"
    return "\n".join("      " + repr(tuple(r)) for r in rows)


def main():
    ap = argparse.ArgumentParser(description="Evaluate ASK (question -> SQL) on the NL eval set.")
    ap.add_argument("--bin", default=DEFAULT_BIN, help="streamhouse binary (default: $STREAMHOUSE_BIN "
                    "or ~/.cache/streamhouse/target/release/streamhouse)")
    ap.add_argument("--dsn", help="use this running server instead of starting one (its eval tables are "
                    "dropped and reloaded unless --no-load)")
    ap.add_argument("--no-load", action="store_true", help="with --dsn: the schemas are already loaded "
                    "(relative-time questions need data loaded less than ~9 minutes ago)")
    ap.add_argument("--split", default="all", help="a split named in the questions file (dev, test, ...) or all")
    ap.add_argument("--schema", choices=SCHEMAS, action="append", help="only these schemas (repeatable)")
    ap.add_argument("--id", action="append", help="only these question ids (repeatable)")
    ap.add_argument("--show-failures", action="store_true")
    ap.add_argument("--json", metavar="OUT", help="write the summary as JSON to OUT")
    ap.add_argument("--questions", default=str(HERE / "questions.jsonl"))
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per statement")
    ap.add_argument("--model", metavar="DIR", help="start the server with this embedding model folder "
                    "(--embedding-model-dir), so ASK also links words by meaning")
    ap.add_argument("--oracle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    questions = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    by_id = {q["id"]: q for q in questions}
    split_names = list(dict.fromkeys(q["split"] for q in questions))
    if args.split != "all" and args.split not in split_names:
        ap.error(f"--split: choose all or one of {', '.join(split_names)}")
    selected = [q for q in questions
                if (args.split == "all" or q["split"] == args.split)
                and (not args.schema or q["schema"] in args.schema)
                and (not args.id or q["id"] in args.id)]

    server = None
    try:
        if args.dsn:
            dsn = args.dsn
        else:
            server = Server(args.bin, ["--embedding-model-dir", args.model] if args.model else [])
            dsn = server.start()
        db = Db(dsn, args.timeout)
    except Exception as e:
        print(f"error: could not start or reach the server: {e}", file=sys.stderr)
        if server:
            server.stop()
        return 2

    try:
        t0 = time.time()
        try:
            meta = load(db, SCHEMAS, drop_first=bool(args.dsn), load_data=not (args.no_load and args.dsn))
        except (RuntimeError, psycopg.Error) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"loaded {', '.join(SCHEMAS)} in {time.time() - t0:.1f}s; "
              f"{len(selected)} questions (split {args.split}){' [oracle]' if args.oracle else ''}")

        results = []
        for q in selected:
            try:
                r = evaluate(db, q, meta, args.oracle)
            except Exception as e:  # a runner bug or an unexpected value must not end the run
                r = {"id": q["id"], "outcome": "errors", "invented": [], "generated": None,
                     "detail": f"runner error: {type(e).__name__}: {e}", "gold_rows": None,
                     "gen_rows": None, "gold_problems": []}
            results.append(r)
        if server and server.proc.poll() is not None:
            print(f"warning: the server exited with {server.proc.returncode} during the run; log tail:\n"
                  f"{server.log()}", file=sys.stderr)
        elapsed = time.time() - t0
        if elapsed > MAX_ELAPSED_S:
            print(f"warning: {elapsed:.0f}s since loading; relative-time questions (last hour, ...) "
                  f"may be unreliable beyond {MAX_ELAPSED_S}s", file=sys.stderr)
    finally:
        if server:
            server.stop()

    # ---- report
    if args.show_failures:
        for r in results:
            q = by_id[r["id"]]
            if r["outcome"] in ("correct", "refused_unanswerable") and not r["invented"]:
                continue
            print(f"\n--- {r['id']} [{q['split']}] {r['outcome']}"
                  f"{' INVENTED ' + repr(r['invented']) if r['invented'] else ''}")
            print(f"  question:  {q['question']}")
            if r["generated"] is not None:
                print(f"  generated: {r['generated']}")
            if r["detail"]:
                print(f"  detail:    {r['detail']}")
            if q.get("refuse"):
                print(f"  gold:      (refuse: {q.get('why', '')})")
            else:
                print(f"  gold:      {q['sql']}")
                print("    gold rows:")
                print(fmt_rows(r["gold_rows"]))
                if r["generated"] is not None:
                    print("    generated rows:")
                    print(fmt_rows(r["gen_rows"]))

    gold_problems = [(r["id"], p) for r in results for p in r["gold_problems"]]
    if args.oracle:
        print(f"\ngold checks: {len(gold_problems)} problem(s)")
        for qid, p in gold_problems:
            print(f"  {qid}: {p} -- {by_id[qid]['sql']}")

    summary = summarize(results, by_id)
    splits = {}
    for sp in split_names:
        rs = [r for r in results if by_id[r["id"]]["split"] == sp]
        if rs:
            splits[sp] = summarize(rs, by_id)
    schemas = {}
    for sc in SCHEMAS:
        rs = [r for r in results if by_id[r["id"]]["schema"] == sc]
        if rs:
            schemas[sc] = summarize(rs, by_id)
    print()
    print_table([(f"split {k}", v) for k, v in splits.items()]
                + [(f"schema {k}", v) for k, v in schemas.items()] + [("all", summary)])
    errors = Counter(re.sub(r"\s+", " ", r["detail"])[:120] for r in results if r["outcome"] == "errors")
    if errors:
        print("\nmost frequent errors:")
        for detail, n in errors.most_common(3):
            print(f"  {n:4d}  {detail}")
    print(f"\nexecution accuracy: {summary['correct']}/{summary['answerable']} = {summary['accuracy']:.1%}"
          f"   invented names: {summary['invented']}   ({time.time() - t0:.0f}s)")

    if args.json:
        out = dict(summary)
        out["by_split"] = splits
        out["by_schema"] = schemas
        out["oracle"] = args.oracle
        out["gold_problems"] = [{"id": i, "problem": p} for i, p in gold_problems]
        out["questions"] = [{"id": r["id"], "outcome": r["outcome"], "invented": r["invented"],
                             "generated": r["generated"], "detail": r["detail"]} for r in results]
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
