"""Runs every tests/slt/*.slt file over Arrow Flight SQL (the ADBC driver), against a fresh
server per file, and compares with the same expected lines test_slt.py checks over the
Postgres protocol. The Flight front end promises the SQL and the answers of the Postgres
one; this is that promise checked on the whole corpus rather than on a handful of queries.

Flight returns typed Arrow columns, not Postgres text, so `pg_text` below prints each
Arrow value the way the Postgres front end does (the rules of executor/src/pg_text.rs:
PostgreSQL 15's float8out/float4out, ISO timestamps with the fraction trimmed and
timestamptz in the session zone, which over Flight is always the default UTC, intervals
in IntervalStyle postgres, booleans t/f, bytea as \\x hex), plus the runner's own NULL and
(empty) conventions.

Some records cannot mean the same thing over Flight, where every call runs on a fresh
session: they are skipped by the named rules in `skip_reason`, and the test prints, per
file, how many records ran and how many each rule skipped. Every record that runs must
pass, except the ones in XFAIL: known differences between the two front ends, each with
the difference named, kept until the server is fixed (a listed record that passes fails
the test, so the list cannot go stale)."""

import datetime
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from adbc_driver_flightsql import DatabaseOptions

import slt
from conftest import Server

SLT_DIR = Path(__file__).resolve().parent.parent / "slt"
FILES = sorted(SLT_DIR.glob("*.slt"))
RPC_TIMEOUT_S = 60
TIMEOUTS = {opt.value: str(RPC_TIMEOUT_S) for opt in
            (DatabaseOptions.TIMEOUT_QUERY, DatabaseOptions.TIMEOUT_FETCH, DatabaseOptions.TIMEOUT_UPDATE)}

# Records that fail over Flight although they pass over the Postgres protocol, keyed by
# (file name, line of the record's header); the value names the difference.
XFAIL = {}


# --- skip rules -----------------------------------------------------------------------------

COPY_STDIO = re.compile(r"^\s*COPY\b.*\b(STDIN|STDOUT)\b", re.IGNORECASE | re.DOTALL)
TRANSACTION_START = ("BEGIN", "START TRANSACTION")
TRANSACTION_END = ("COMMIT", "END", "ROLLBACK", "ABORT")
TRANSACTION_CONTROL = TRANSACTION_START + TRANSACTION_END + ("SAVEPOINT", "RELEASE")
SESSION_WRITES = ("SET", "RESET")

RULES = {
    "copy-stdio": "COPY ... FROM STDIN / TO STDOUT is the Postgres protocol's COPY sub-protocol; "
                  "Flight refuses it (bulk ingest is the Flight way in)",
    "transaction": "BEGIN/COMMIT/ROLLBACK and the statements between them: Flight SQL has no "
                   "transactions (refused with FAILED_PRECONDITION), every statement commits on its own",
    "session-write": "SET/RESET change the connection's session; a Flight call's session ends with the call",
    "session-diverged": "runs while a skipped SET is in effect, so the Postgres session and a fresh "
                        "Flight session disagree about a setting the record may read",
}


def words(sql):
    return " ".join(sql.split()).upper()


def starts_with(sql, prefixes):
    text = words(sql)
    return any(text == p or text.startswith(p + " ") or text.startswith(p + ";") for p in prefixes)


def setting_name(sql):
    """The parameter a SET/RESET names, lower case (`all` for RESET ALL)."""
    tokens = words(sql).rstrip(";").split()[1:]
    if tokens[:1] in (["SESSION"], ["LOCAL"]):
        tokens = tokens[1:]
    if tokens[:2] == ["TIME", "ZONE"]:
        return "timezone"
    return re.split(r"[=\s]", tokens[0].lower(), maxsplit=1)[0] if tokens else ""


class SkipRules:
    """Decides, record by record in file order, whether a record can run over Flight."""

    def __init__(self):
        self.in_transaction = None  # header line of the skipped BEGIN, while its block lasts
        self.diverged = {}  # setting -> header line of the skipped SET that changed it

    def skip_reason(self, rec):
        sql = rec.sql
        if COPY_STDIO.match(sql):
            return "copy-stdio"
        if starts_with(sql, TRANSACTION_CONTROL):
            if starts_with(sql, TRANSACTION_START) and not rec.expect_error:
                self.in_transaction = rec.line
            elif starts_with(sql, TRANSACTION_END):
                self.in_transaction = None
            return "transaction"
        if self.in_transaction is not None:
            return "transaction"
        if starts_with(sql, SESSION_WRITES):
            if rec.expect_error:
                # Refused, so it changes nothing: while the sessions still agree it can run.
                return "session-diverged" if self.diverged else None
            name = setting_name(sql)
            if starts_with(sql, ("RESET",)):
                if name == "all":
                    self.diverged.clear()
                else:
                    self.diverged.pop(name, None)
            elif re.search(r"(=|\bTO)\s*DEFAULT\s*;?$", words(sql)):
                self.diverged.pop(name, None)
            else:
                self.diverged[name] = rec.line
            return "session-write"
        if self.diverged:
            return "session-diverged"
        return None


# --- Arrow values as the Postgres front end prints them ------------------------------------

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
EPOCH = datetime.datetime(1970, 1, 1)
UNIT_MICROS = {"s": (MICROS_PER_SECOND, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}


def to_micros(value, unit):
    """An integer in `unit` as microseconds; nanoseconds round half to even, like the server."""
    mul, div = UNIT_MICROS[unit]
    if div == 1:
        return value * mul
    q, r = divmod(value, div)
    return q + 1 if r > div // 2 or (r == div // 2 and q % 2) else q


def float_text(digits, exponent, negative, max_digits):
    """float8out/float4out from the shortest round-trip digits: exponent form below 1e-4
    and from 10**max_digits."""
    sign = "-" if negative else ""
    if digits == "0":
        return sign + "0"
    if exponent < -4 or exponent >= max_digits:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = exponent + 1
    if len(digits) <= whole:
        return sign + digits + "0" * (whole - len(digits))
    return f"{sign}{digits[:whole]}.{digits[whole:]}"


def shortest(text):
    """(digits without trailing zeros, decimal exponent of the first digit, negative) of
    a round-trip repr such as '1e-05' or '1000000000000000.0'."""
    t = Decimal(text).as_tuple()
    digits, exponent = "".join(map(str, t.digits)), t.exponent
    while len(digits) > 1 and digits.endswith("0"):
        digits, exponent = digits[:-1], exponent + 1
    return digits, len(digits) - 1 + exponent, bool(t.sign)


def float_value(v, single):
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    text = np.format_float_scientific(np.float32(v), unique=True) if single else repr(v)
    digits, exponent, negative = shortest(text)
    return float_text(digits, exponent, negative, 6 if single else 15)


def clock(micros):
    """HH:MM:SS with the fraction's trailing zeros trimmed; hours may pass 24."""
    secs, frac = divmod(micros, MICROS_PER_SECOND)
    out = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
    return out + ("." + f"{frac:06d}".rstrip("0") if frac else "")


def day_text(d):
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def timestamp(micros, zoned):
    days, rest = divmod(micros, MICROS_PER_DAY)
    return day_text(EPOCH + datetime.timedelta(days=days)) + " " + clock(rest) + ("+00" if zoned else "")


def truncated_divmod(a, b):
    """Quotient toward zero and a remainder with the dividend's sign (Rust's / and %)."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


def interval(months, days, micros):
    """EncodeInterval with IntervalStyle postgres."""
    parts, negative_before = [], False
    years, months = truncated_divmod(months, 12)
    for value, unit in ((years, "year"), (months, "mon"), (days, "day")):
        if value:
            plus = "+" if negative_before and value > 0 else ""
            parts.append(f"{plus}{value} {unit}{'' if value == 1 else 's'}")
            negative_before |= value < 0
    if not parts or micros:
        sign = "-" if micros < 0 else "+" if negative_before else ""
        parts.append(sign + clock(abs(micros)))
    return " ".join(parts)


def column_text(column):
    """The column's values as .slt cells."""
    t = column.type
    values = column.to_pylist()
    if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_time(t) or pa.types.is_date64(t):
        ints = pc.cast(column, pa.int64()).to_pylist()
    if pa.types.is_null(t):
        cells = [None] * len(column)
    elif pa.types.is_boolean(t):
        cells = [None if v is None else "t" if v else "f" for v in values]
    elif pa.types.is_integer(t):
        cells = [None if v is None else str(v) for v in values]
    elif pa.types.is_floating(t):
        cells = [None if v is None else float_value(v, pa.types.is_float32(t)) for v in values]
    elif pa.types.is_decimal(t):
        cells = [None if v is None else format(v, "f") for v in values]
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        cells = values
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        cells = [None if v is None else "\\x" + v.hex() for v in values]
    elif pa.types.is_date32(t):
        cells = [None if v is None else day_text(v) for v in values]
    elif pa.types.is_date64(t):
        cells = [None if v is None else day_text(EPOCH + datetime.timedelta(days=v // 86_400_000)) for v in ints]
    elif pa.types.is_timestamp(t):
        cells = [None if v is None else timestamp(to_micros(v, t.unit), t.tz is not None) for v in ints]
    elif pa.types.is_time(t):
        cells = [None if v is None else clock(to_micros(v, t.unit) % MICROS_PER_DAY) for v in ints]
    elif pa.types.is_duration(t):
        # A duration is what subtracting timestamps gives; shown as days and time.
        cells = [None if v is None else interval(0, *truncated_divmod(to_micros(v, t.unit), MICROS_PER_DAY))
                 for v in ints]
    elif t == pa.month_day_nano_interval():
        cells = [None if v is None else interval(v.months, v.days, to_micros(v.nanoseconds, "ns")) for v in values]
    else:
        raise TypeError(f"no .slt text for Arrow type {t}")
    return ["NULL" if c is None else "(empty)" if c == "" else c for c in cells]


def table_rows(table):
    columns = [column_text(c.combine_chunks() if c.num_chunks else pa.array([], c.type)) for c in table.columns]
    return [" ".join(cells) for cells in zip(*columns)] if columns else []


# --- the runner -------------------------------------------------------------------------------

def run_record(conn, rec):
    """(rows or None, row count, error message or None) of one record over Flight."""
    with conn.cursor() as cur:
        try:
            cur.execute(rec.sql)
            table = cur.fetch_arrow_table() if cur.description else None
        except adbc_driver_manager.Error as e:
            return None, None, str(e)
    return (table_rows(table) if table is not None else []), cur.rowcount, None


def check(rec, rows, count, err):
    """A failure message, or None when the record passes."""
    if rec.expect_error:
        if err is None:
            return "expected an error, got success"
        if rec.error_regex and not re.search(rec.error_regex, err):
            return f"error {err!r} does not match {rec.error_regex!r}"
        if "(SQLSTATE " not in err:
            return f"error {err!r} is not an SQL error (no SQLSTATE)"
        return None
    if err is not None:
        return f"unexpected error: {err}"
    if rec.count is not None and count != rec.count:
        return f"expected {rec.count} rows affected, got {count}"
    if rec.kind == "query":
        got, want = slt.sorted_rows(rec, rows), slt.sorted_rows(rec, rec.expected)
        if got != want:
            return "wrong result\nexpected:\n" + "\n".join(want) + "\ngot:\n" + "\n".join(got)
    return None


def run_file(conn, path):
    """(records run, skips by rule, {(file, line): failure})."""
    rules, ran, skipped, failures = SkipRules(), 0, Counter(), {}
    for rec in slt.parse(path.read_text()):
        reason = rules.skip_reason(rec)
        assert reason is None or reason in RULES, reason
        if reason:
            skipped[reason] += 1
            continue
        ran += 1
        failure = check(rec, *run_record(conn, rec))
        if failure:
            failures[(path.name, rec.line)] = f"{path.name}:{rec.line}: {failure}\n{rec.sql}"
    return ran, skipped, failures


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_slt_over_flight(tmp_path, path, capsys):
    server = Server(tmp_path / "data").start()
    try:
        with flight_sql.connect(server.flight_uri, db_kwargs=TIMEOUTS, autocommit=True) as conn:
            ran, skipped, failures = run_file(conn, path)
    finally:
        server.stop(9)
    with capsys.disabled():
        detail = ", ".join(f"{n} {rule}" for rule, n in sorted(skipped.items()))
        print(f"\n{path.name} over Flight SQL: {ran} records ran, {sum(skipped.values())} skipped"
              + (f" ({detail})" if detail else ""))
    assert ran > 0, f"every record of {path.name} was skipped"
    unexpected = {k: v for k, v in failures.items() if k not in XFAIL}
    assert not unexpected, "\n\n".join(unexpected.values())
    mine = {k: v for k, v in XFAIL.items() if k[0] == path.name}
    fixed = sorted(set(mine) - set(failures))
    assert not fixed, f"listed in XFAIL but passed, were skipped or no longer exist (remove them): {fixed}"
    if mine:
        pytest.xfail("; ".join(f"line {line}: {reason}" for (_, line), reason in sorted(mine.items())))
