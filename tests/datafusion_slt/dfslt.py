"""Runs DataFusion's own sqllogictest (.slt) files against StreamHouse over the Postgres
wire protocol and compares the results in Postgres' text format.

DataFusion's expected results are written in *its* display format (the Rust runner
formats Arrow arrays). We receive Postgres text values (libpq, simple query protocol) and
convert each expected cell to what Postgres would print for that value, then compare.

File format (as sqllogictest-rs parses it)
------------------------------------------
`statement ok|error [regex]|count N`, `query <types> [nosort|rowsort|valuesort] [label]`,
`query error [regex]`, an error message block under `----` (ends at two blank lines),
`skipif`/`onlyif <label>` (we are the engine labelled `DataFusion`, so `onlyif postgres`
records are skipped and `skipif postgres` records run), `include <glob>`, `halt`,
`hash-threshold N` (results of more than N values are given as an md5),
`control sortmode ...`, `sleep`, `subtest`, `# comments`. Results are compared line by
line after trimming trailing whitespace, as DataFusion's validator does.

Outcomes
--------
* `error` records (statement or query): ANY error from our server passes. DataFusion's
  messages (`DataFusion error: Error during planning: ...`) reach clients re-wrapped by
  our Postgres front end, so the regex / expected message is not enforced; whether it
  matched anyway is counted (`FileRunner.error_regex`) for information. Exception: an
  error saying a relation does not exist, about an object whose setup already failed in
  this file, is a failure (it says nothing about the error DataFusion expects).
* `statement ok`: passes when the server returns no error.
* `statement count N`: the command tag's row count (0 when the tag has none, as for DDL;
  or the number of rows) must be N.
* `query`: the rows must match after the normalization below. A DML statement written
  as a query (DataFusion returns its row count as a one-row `count` column) is compared
  against the Postgres command tag's row count (`INSERT 0 3` -> `3`): that is how the
  same fact travels over the Postgres protocol. DataFusion's `<slt:ignore>` wildcard is
  honoured (fragments compared as unconverted text).
* Skipped, with a reason: EXPLAIN records (plans differ by design: our tables are stream
  tables), records guarded by `onlyif <other engine>`, records naming objects that
  DataFusion's Rust harness registers before the file runs (see HARNESS_OBJECTS),
  records reading a data file from DataFusion's source tree or using a table made from
  one (see `data_file`), and md5-hashed results over columns other than I/T (a hash
  cannot be re-formatted). Whole files are skipped for reasons listed by
  `file_skip_reason`.

Failures are attributed to a cause (`classify_error`, `classify_mismatch`): a record that
fails on an object whose CREATE / INSERT / SELECT INTO failed earlier in the file is
counted as "after failed setup: <that statement's cause>".

Normalization (mechanical, by column type; never per test)
----------------------------------------------------------
The column's kind comes from the record's type letter; for `?` columns (DataFusion's
"any other type") it comes from the type OID in our RowDescription.

Actual side (what libpq hands us): SQL NULL -> `NULL`; empty string -> `(empty)`; in
text columns trailing newlines are trimmed and NUL shown as `\\0` (DataFusion's harness
does the same to its own values); the last cell is right-trimmed (the runner trims each
line). A multi-line value in the last column is expanded into `NN)line` rows exactly as
DataFusion's harness does.

Expected side, cell by cell, `NULL` always means SQL NULL, otherwise:
* B (boolean): `true`/`false` -> `t`/`f`.
* R (float/decimal): compared numerically: equal, both NaN, or
  |a-e| <= max(1e-12, 1e-9*max(|a|,|e|)). DataFusion rounds to 12 decimal places and
  normalizes decimals (`2.50` -> `2.5`); Postgres prints float8 shortest round-trip and
  numeric with its scale. `Infinity`/`-Infinity`/`NaN` are spelled the same.
  How far our float text is from what PostgreSQL itself would print (`1.0` vs `1`,
  `1e100` vs `1e+100`, `inf` vs `Infinity`) is collected separately
  (`float_text_deviations`, not a failure).
* P (timestamp) and D (date/time) and `?` columns of OID timestamp/timestamptz/date/time:
  `2024-01-01T02:03:04.5` -> `2024-01-01 02:03:04.5`; fractions are rounded to
  microseconds and trailing zeros dropped (PG's precision and style); a value with an
  offset (`Z`, `+05:00`) is a timestamptz: shown in the session time zone with PG's
  offset style (`+00`, `+05:30`). The session time zone is UTC (the server's default)
  until the file runs `SET TIME ZONE x` / `SET timezone = x` /
  `SET datafusion.execution.time_zone = x` (offsets read in ISO sign convention, as
  DataFusion reads them; names through zoneinfo). Years <= 0 print as PG's `N BC`, years
  > 9999 lose chrono's `+`. A D column sent with the date OID whose DataFusion text is a
  midnight timestamp (how DataFusion prints Date64) compares as the date.
* `?` of OID interval: DataFusion's `1 years 2 mons 3 days 4 hours 5 mins 6.5 secs`
  (any subset, any order of zeros) -> PG's `1 year 2 mons 3 days 04:05:06.5`.
* `?` of OID bytea: hex `0aff` -> `\\x0aff`.
* `?` of an array OID: DataFusion's `[1, 2, NULL]` / `[[1], [2]]` / `[]` -> PG's
  `{1,2,NULL}` / `{{1},{2}}` / `{}`, elements converted by the element type (booleans,
  timestamps, intervals, bytea as above, structs as below) and quoted by PG's array_out
  rules; float elements compare numerically. DataFusion prints a text list holding one
  empty string as `[]`, so `[]` also matches `{""}`.
* `?` of OID record: DataFusion's `{a: 1, b: x y}` -> PG's `(1,"x y")` (record_out
  quoting; NULL fields are empty). PG's record type carries no field types, so fields
  are recognized by shape: `true`/`false` -> `t`/`f`, ISO timestamps as above, nested
  `{k: v}` as records and `[...]` as arrays.
* I, T and other `?` types: compared as text, unchanged.
Because values may contain spaces, an expected line is split into cells by trying every
split at single spaces and keeping one whose cells all match (the column count comes from
the server's result); `rowsort` / `valuesort` results are matched as multisets."""

import datetime as dt
import glob
import hashlib
import math
import os
import re
import select
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ENGINE_LABEL = "datafusion"
RECORD_TIMEOUT_S = float(os.environ.get("DF_SLT_RECORD_TIMEOUT", "20"))

# ---------------------------------------------------------------------------------------
# Which files and records can run at all
# ---------------------------------------------------------------------------------------

# Objects that DataFusion's Rust test harness (src/test_context.rs) registers before the
# named file runs; no SQL creates them, so records naming them are skipped.
HARNESS_OBJECTS = {
    "cte.slt": ["strict_schema", "orders"],
    "information_schema_columns.slt": ["table_with_many_types", "my_catalog"],
    "information_schema_table_types.slt": [],
    "map.slt": ["table_with_map"],
    "joins.slt": ["test_partition_table", "table_with_many_types", "my_catalog", "example"],
    "range_partitioning.slt": ["range_partitioned", "unbounded_range_like", "unbounded_range_like_shifted"],
    "metadata.slt": ["table_with_metadata", "larger_table", "smaller_table"],
    "arrow_field.slt": ["table_with_metadata", "larger_table", "smaller_table"],
    "union_function.slt": ["union_table"],
    "aggregate.slt": ["approx_distinct_union_test"],
    "dictionary_struct.slt": ["dict_struct_table", "dict_struct_nullable"],
    "async_udf.slt": ["async_abs"],
    "cast_extension_type_metadata.slt": ["UUID"],  # a type planner the harness installs
}

# A path to a data file in DataFusion's source tree or its test-data submodules (not
# shipped in the crate): LOCATION '...', read_csv('...'), COPY ... FROM '...'. Paths under
# test_files/scratch are written by the test itself and do not count.
_DATA_FILE = re.compile(r"\bLOCATION\s+'([^']*)'|\bread_(?:csv|parquet|json|avro|arrow)\s*\(\s*'([^']*)'|\bCOPY\b[^;]*?\bFROM\s+'([^']*)'", re.I)


def data_file(sql):
    """The first data file from DataFusion's source tree that `sql` reads, or None."""
    for m in _DATA_FILE.finditer(sql):
        path = next(g for g in m.groups() if g is not None)
        if not path.startswith("test_files/scratch"):
            return path
    return None


def file_skip_reason(rel, text):
    """Why a whole file cannot run against our server (None if it can). Files that read
    DataFusion's data files still run: only the records needing those files are skipped
    (see FileRunner.skip_reason)."""
    if rel.startswith("spark/"):
        return "Spark-compatibility suite: needs the datafusion-spark functions and Spark SQL dialect, not part of a default DataFusion SessionContext"
    if rel.startswith("tpch/"):
        return "needs generated TPC-H data files"
    if rel in ("avro.slt", "dynamic_file.slt"):
        return "needs data files registered by the Rust harness"
    return None


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str  # statement | query | hash-threshold | sortmode | halt | sleep
    path: str = ""
    line: int = 0
    sql: str = ""
    conditions: list = field(default_factory=list)  # [("skipif"|"onlyif", label)]
    expect: str = "ok"  # ok | error | count | results
    error: str = ""  # inline regex, or the message under ---- when error_block
    error_block: bool = False
    count: int = 0
    types: str = ""
    sort: str | None = None
    label: str | None = None
    results: list = field(default_factory=list)
    value: str = ""  # hash-threshold / sortmode / sleep argument


class ParseError(Exception):
    pass


def parse_file(path):
    path = Path(path)
    return parse_text(path.read_text(encoding="utf-8"), path)


def parse_text(text, path):
    lines = [l[:-1] if l.endswith("\r") else l for l in text.split("\n")]
    if lines and lines[-1] == "" and text.endswith("\n"):
        lines.pop()
    records, conditions, i, n = [], [], 0, len(lines)

    def sql_block(start):
        """First line always belongs to the SQL; then up to a blank line or `----`."""
        if start >= n:
            raise ParseError(f"{path}:{start}: unexpected end of file")
        out, j = [lines[start]], start + 1
        while j < n:
            if lines[j] == "":
                return "\n".join(out), False, j + 1
            if lines[j] == "----":
                return "\n".join(out), True, j + 1
            out.append(lines[j])
            j += 1
        return "\n".join(out), False, j

    def error_block(j):
        out = []
        while j < n:
            if lines[j] == "" and (j + 1 >= n or lines[j + 1] == ""):
                return "\n".join(out).strip(), j + 2
            out.append(lines[j])
            j += 1
        return "\n".join(out).strip(), j

    while i < n:
        line = lines[i]
        if line.startswith("#") or line == "":
            i += 1
            continue
        toks = line.split()
        if not toks:
            i += 1
            continue
        where = dict(path=str(path), line=i + 1)
        head = toks[0]
        if head == "include" and len(toks) == 2:
            pattern = str(Path(path).parent / toks[1])
            for inc in sorted(glob.glob(pattern)):
                records.extend(parse_file(inc))
            i += 1
        elif head == "halt":
            records.append(Record("halt", **where))
            i += 1
        elif head in ("subtest", "connection"):
            i += 1
        elif head == "sleep":
            records.append(Record("sleep", value=toks[1], **where))
            i += 1
        elif head in ("skipif", "onlyif") and len(toks) == 2:
            conditions.append((head, toks[1]))
            i += 1
        elif head == "hash-threshold":
            records.append(Record("hash-threshold", value=toks[1], **where))
            i += 1
        elif head == "control":
            if toks[1:2] == ["sortmode"]:
                records.append(Record("sortmode", value=toks[2], **where))
            i += 1
        elif head == "statement":
            rec = Record("statement", conditions=conditions, **where)
            conditions = []
            if toks[1:] == ["ok"]:
                rec.expect = "ok"
            elif toks[1:2] == ["error"]:
                rec.expect, rec.error = "error", " ".join(toks[2:])
            elif toks[1:2] == ["count"] and len(toks) == 3:
                rec.expect, rec.count = "count", int(toks[2])
            else:
                raise ParseError(f"{path}:{i + 1}: invalid line {line!r}")
            rec.sql, has_block, i = sql_block(i + 1)
            if has_block:
                if rec.expect != "error" or rec.error:
                    raise ParseError(f"{path}:{rec.line}: statement has results")
                rec.error, i = error_block(i)
                rec.error_block = True
            records.append(rec)
        elif head == "query":
            rec = Record("query", conditions=conditions, **where)
            conditions = []
            if toks[1:2] == ["error"]:
                rec.expect, rec.error = "error", " ".join(toks[2:])
            else:
                rec.expect = "results"
                rec.types = toks[1] if len(toks) > 1 else ""
                rec.sort = toks[2] if len(toks) > 2 else None
                rec.label = toks[3] if len(toks) > 3 else None
                if rec.sort not in (None, "nosort", "rowsort", "valuesort"):
                    raise ParseError(f"{path}:{i + 1}: invalid sort mode {rec.sort!r}")
            rec.sql, has_block, i = sql_block(i + 1)
            if has_block:
                if rec.expect == "error":
                    if rec.error:
                        raise ParseError(f"{path}:{rec.line}: duplicated error message")
                    rec.error, i = error_block(i)
                    rec.error_block = True
                else:
                    while i < n and lines[i] != "":
                        rec.results.append(lines[i])
                        i += 1
            records.append(rec)
        else:
            raise ParseError(f"{path}:{i + 1}: invalid line {line!r}")
    return records


# ---------------------------------------------------------------------------------------
# Postgres types and value normalization
# ---------------------------------------------------------------------------------------

OID_KIND = {
    16: "bool", 17: "bytea", 18: "text", 19: "text", 20: "int", 21: "int", 23: "int", 25: "text",
    26: "int", 114: "text", 700: "float", 701: "float", 1042: "text", 1043: "text",
    1082: "date", 1083: "time", 1114: "timestamp", 1184: "timestamptz", 1186: "interval",
    1266: "time", 1700: "float", 2249: "record", 2950: "text", 3802: "text",
}
ARRAY_ELEM = {
    1000: 16, 1001: 17, 1002: 18, 1005: 21, 1007: 23, 1009: 25, 1014: 1042, 1015: 1043,
    1016: 20, 1021: 700, 1022: 701, 1115: 1114, 1182: 1082, 1183: 1083, 1185: 1184,
    1187: 1186, 1231: 1700, 1270: 1266, 2287: 2249, 2951: 2950, 199: 114, 3807: 3802,
}
LETTER_KIND = {"B": "bool", "I": "int", "R": "float", "T": "text", "P": "timestamp", "D": "datetime"}


@dataclass
class Col:
    letter: str
    oid: int
    tz: object = None  # session time zone (tzinfo) for values with an offset; None = UTC

    @property
    def kind(self):
        if self.letter in LETTER_KIND:
            return LETTER_KIND[self.letter]
        if self.oid in ARRAY_ELEM:
            return "array"
        return OID_KIND.get(self.oid, "other")

    @property
    def elem(self):
        return Col("?", ARRAY_ELEM[self.oid], self.tz) if self.oid in ARRAY_ELEM else None


def to_float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def floats_match(e, a):
    x, y = to_float(e), to_float(a)
    if x is None or y is None:
        return e == a
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= max(1e-12, 1e-9 * max(abs(x), abs(y)))


_TS = re.compile(r"^([+-]?\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?(?::?\d{2})?)?$")
_DATE = re.compile(r"^([+-]?\d{4,})-(\d{2})-(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


def _micros(frac, truncate=False):
    """Fraction digits -> rounded microseconds (may be 1_000_000 after rounding)."""
    if not frac:
        return 0
    nanos = int((frac + "000000000")[:9])
    return nanos // 1000 if truncate else (nanos + 500) // 1000


def _frac_text(micros):
    return ("." + f"{micros:06d}".rstrip("0")) if micros else ""


def _pg_year(y):
    if y <= 0:
        return f"{1 - y:04d}", " BC"
    return f"{y:04d}", ""


def pg_date(v):
    m = _DATE.match(v)
    if not m:
        return v
    year, bc = _pg_year(int(m.group(1)))
    return f"{year}-{m.group(2)}-{m.group(3)}{bc}"


def pg_time(v, truncate=False):
    m = _TIME.match(v)
    if not m:
        return v
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    us = _micros(m.group(4), truncate)
    total = ((h * 60 + mi) * 60 + s) * 1_000_000 + us
    s_all, us = divmod(total, 1_000_000)
    h, rem = divmod(s_all, 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}{_frac_text(us)}"


def _offset_text(off):
    """PG's style for a UTC offset: +08, -05, +05:30."""
    secs = int(off.total_seconds())
    sign = "-" if secs < 0 else "+"
    h, rem = divmod(abs(secs), 3600)
    m, sec = divmod(rem, 60)
    return f"{sign}{h:02d}" + (f":{m:02d}" if m or sec else "") + (f":{sec:02d}" if sec else "")


def pg_timestamp(v, truncate=False, tz=None):
    """`tz`: the session time zone (tzinfo) a value with an offset is displayed in."""
    m = _TS.match(v)
    if not m:
        return v
    y, mo, d, h, mi, s = (int(m.group(k)) for k in range(1, 7))
    us, off = _micros(m.group(7), truncate), m.group(8)
    if 1 <= y <= 9999:
        t = dt.datetime(y, mo, d, h, mi, s) + dt.timedelta(microseconds=us)
        suffix = ""
        if off:
            delta = dt.timedelta(0)
            if off != "Z":
                sign = -1 if off[0] == "-" else 1
                digits = off[1:].replace(":", "")
                delta = sign * dt.timedelta(hours=int(digits[0:2]), minutes=int(digits[2:4] or 0), seconds=int(digits[4:6] or 0))
            try:
                t = (t - delta).replace(tzinfo=dt.timezone.utc).astimezone(tz or dt.timezone.utc)
            except (OverflowError, ValueError):
                return v
            suffix = _offset_text(t.utcoffset())
        if 1 <= t.year <= 9999:
            year, bc = _pg_year(t.year)
            return f"{year}-{t:%m-%d %H:%M:%S}{_frac_text(t.microsecond)}{suffix}{bc}"
    year, bc = _pg_year(int(m.group(1)))  # out of Python's range: no offset arithmetic
    return f"{year}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}{_frac_text(min(us, 999999))}{'+00' if off else ''}{bc}"


def pg_datetime(v, truncate=False, tz=None):
    """A D or P column value: date, time or timestamp, whichever it looks like."""
    if _TS.match(v):
        return pg_timestamp(v, truncate, tz)
    if _DATE.match(v):
        return pg_date(v)
    if _TIME.match(v):
        return pg_time(v, truncate)
    return v


_IV_PART = re.compile(r"(-?\d+(?:\.\d+)?)\s+(years?|mons?|months?|days?|hours?|mins?|minutes?|secs?|seconds?)\b")


def pg_interval(v):
    parts = _IV_PART.findall(v)
    if not parts or _IV_PART.sub("", v).strip():
        return v
    months = days = 0
    nanos = 0
    for num, unit in parts:
        if unit.startswith("year"):
            months += int(num) * 12
        elif unit.startswith("mon"):
            months += int(num)
        elif unit.startswith("day"):
            days += int(num)
        else:
            scale = {"h": 3600, "m": 60, "s": 1}[unit[0]]
            whole, _, frac = num.lstrip("-").partition(".")
            n = (int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])) * scale
            nanos += -n if num.startswith("-") else n
    return format_pg_interval(months, days, nanos)


def format_pg_interval(months, days, nanos):
    """PostgreSQL's IntervalStyle=postgres output."""
    micros = int(math.copysign((abs(nanos) + 500) // 1000, nanos)) if nanos else 0
    years, mons = int(months / 12), months - int(months / 12) * 12
    out, before = [], False
    for value, unit in ((years, "year"), (mons, "mon"), (days, "day")):
        if value:
            plus = "+" if before and value > 0 else ""
            out.append(f"{plus}{value} {unit}{'' if value == 1 else 's'}")
            before = value < 0
    if micros or not out:
        sign = "-" if micros < 0 else ("+" if before else "")
        secs, us = divmod(abs(micros), 1_000_000)
        h, rem = divmod(secs, 3600)
        out.append(f"{sign}{h:02d}:{rem // 60:02d}:{rem % 60:02d}{_frac_text(us)}")
    return " ".join(out)


def pg_bytea(v):
    return "\\x" + v.lower() if re.fullmatch(r"[0-9a-fA-F]*", v) else v


def _split_top(inner):
    """Splits DataFusion's `a, [b, c], {d: e}` at top-level `, `."""
    items, depth, start, i = [], 0, 0, 0
    while i < len(inner):
        ch = inner[i]
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif depth == 0 and inner.startswith(", ", i):
            items.append(inner[start:i])
            start = i + 2
            i += 1
        i += 1
    items.append(inner[start:])
    return items


def _needs_quotes_array(s):
    return s == "" or s.upper() == "NULL" or any(c in s for c in '{},"\\') or any(c.isspace() for c in s)


def _quote(s, doubled):
    if doubled:  # record_out: double quotes and backslashes by doubling
        return '"' + s.replace('"', '""').replace("\\", "\\\\") + '"'
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_array(v, elem):
    if not (v.startswith("[") and v.endswith("]")):
        return v
    inner = v[1:-1]
    items = [] if inner == "" else _split_top(inner)
    out = []
    for item in items:
        if item.startswith("[") and item.endswith("]"):
            out.append(pg_array(item, elem))
        elif item == "NULL":
            out.append("NULL")
        else:
            auto = elem.oid == 0 and item.startswith("{") and item.endswith("}") and ": " in item
            text = pg_record(item, elem) if auto else (_untyped(item, elem) if elem.oid == 0 else to_pg(item, elem))
            out.append(_quote(text, False) if _needs_quotes_array(text) else text)
    return "{" + ",".join(out) + "}"


def _untyped(val, col):
    """A value whose type we do not know (a struct field: PG's record type carries no
    field types): booleans and timestamps are recognized by their shape."""
    if val in ("true", "false"):
        return val[0]
    if _TS.match(val):
        return pg_timestamp(val, tz=col.tz if col else None)
    return val


def pg_record(v, fields_col=None):
    if not (v.startswith("{") and v.endswith("}")):
        return v
    inner = v[1:-1]
    out = []
    for item in ([] if inner == "" else _split_top(inner)):
        _, sep, val = item.partition(": ")
        if not sep:
            return v
        if val == "NULL":
            out.append("")
            continue
        if val.startswith("{") and val.endswith("}") and ": " in val:
            text = pg_record(val, fields_col)
        elif val.startswith("[") and val.endswith("]"):
            text = pg_array(val, Col("?", 0, fields_col.tz if fields_col else None))
        else:
            text = _untyped(val, fields_col)
        needs = text == "" or any(c in text for c in '(),"\\') or any(c.isspace() for c in text)
        out.append(_quote(text, True) if needs else text)
    return "(" + ",".join(out) + ")"


def to_pg(value, col, truncate=False):
    """One expected (DataFusion-formatted, non-NULL) cell in Postgres' text format.
    `truncate` (diagnosis only) drops sub-microsecond digits instead of rounding."""
    kind = col.kind
    if kind == "bool":
        return {"true": "t", "false": "f"}.get(value, value)
    if kind in ("timestamp", "timestamptz"):
        return pg_timestamp(value, truncate, col.tz)
    if kind == "datetime":
        if col.oid == 1082 and value.endswith("T00:00:00") and _DATE.match(value[:-9]):
            return pg_date(value[:-9])  # Date64 (DataFusion prints it as a timestamp) sent as a PG date
        return pg_datetime(value, truncate, col.tz)
    if kind == "date":
        return pg_date(value) if _DATE.match(value) else pg_datetime(value, truncate, col.tz)
    if kind == "time":
        return pg_time(value, truncate)
    if kind == "interval":
        return pg_interval(value)
    if kind == "bytea":
        return pg_bytea(value)
    if kind == "array":
        return pg_array(value, col.elem)
    if kind == "record":
        return pg_record(value, col)
    return value


_PG_ARRAY_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{},]|[^{},"]+')


def _array_tokens(s):
    return _PG_ARRAY_TOKEN.findall(s)


def cell_match(exp, act, col):
    if exp == "NULL" or act == "NULL":
        return exp == act
    kind = col.kind
    if kind == "float":
        return floats_match(exp, act)
    conv = to_pg(exp, col)
    if conv == act:
        return True
    if kind == "array" and exp == "[]" and act == '{""}' and col.elem.kind == "text":
        return True  # DataFusion prints a list holding one empty string as []
    if kind == "array" and col.elem.kind == "float":
        a, b = _array_tokens(conv), _array_tokens(act)
        return len(a) == len(b) and all(x == y or floats_match(x, y) for x, y in zip(a, b))
    return False


# ---------------------------------------------------------------------------------------
# Matching rows
# ---------------------------------------------------------------------------------------


def split_match(line, row, cols):
    """Tries to split an expected line into len(row) cells matching `row`; returns bool."""
    ncols = len(row)
    if ncols == 0:
        return line.strip() == ""
    naive = line.split(" ")
    if len(naive) == ncols and all(cell_match(e, a, c) for e, a, c in zip(naive, row, cols)):
        return True
    spaces = [i for i, ch in enumerate(line) if ch == " "]
    if len(spaces) > 400:
        return False
    starts = {0}
    for c in range(ncols - 1):
        nxt = set()
        for st in starts:
            for sp in spaces:
                if sp >= st and (sp + 1) not in nxt and cell_match(line[st:sp], row[c], cols[c]):
                    nxt.add(sp + 1)
        if not nxt:
            return False
        starts = nxt
    return any(cell_match(line[st:], row[-1], cols[-1]) for st in starts)


def _canon(v, col):
    if col.kind == "float":
        f = to_float(v)
        return "NaN" if f is not None and math.isnan(f) else (format(f, ".8g") if f is not None else v)
    return v


def rows_match_unordered(expected, actual, cols):
    if len(expected) != len(actual):
        return False
    buckets = defaultdict(list)
    for idx, row in enumerate(actual):
        buckets[tuple(_canon(v, c) for v, c in zip(row, cols))].append(idx)
    used, leftover = set(), []
    for line in expected:
        cells = line.split(" ")
        key = None
        if len(cells) == len(cols):
            key = tuple(_canon(v if v == "NULL" or c.kind == "float" else to_pg(v, c), c) for v, c in zip(cells, cols))
        if key is not None and buckets.get(key):
            used.add(buckets[key].pop())
        else:
            leftover.append(line)
    rest = [i for i in range(len(actual)) if i not in used]
    if len(leftover) > 300:
        return False
    for line in leftover:
        for j, i in enumerate(rest):
            if split_match(line, actual[i], cols):
                rest.pop(j)
                break
        else:
            return False
    return True


def values_match_unordered(expected, actual, cols):
    values = [(v, c) for row in actual for v, c in zip(row, cols)]
    if len(expected) != len(values):
        return False
    for line in expected:
        for j, (v, c) in enumerate(values):
            if cell_match(line, v, c):
                values.pop(j)
                break
        else:
            return False
    return True


def pg_float_text(value, oid):
    """What PostgreSQL 15 prints for a float8/float4 (extra_float_digits = 1)."""
    f = to_float(value)
    if f is None:
        return value
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    digits = _shortest_f32(f) if oid == 700 else repr(f)
    mant, _, exp = digits.partition("e")
    sign = "-" if mant.startswith("-") else ""
    mant = mant.lstrip("-")
    whole, _, frac = mant.partition(".")
    ds = (whole + frac).lstrip("0")
    point = len(whole) + (int(exp) if exp else 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    ds = ds.rstrip("0") or "0"
    e10 = point - 1
    limit = 6 if oid == 700 else 15
    if e10 < -4 or e10 >= limit:
        m = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{m}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{ds}"
    if point >= len(ds):
        return f"{sign}{ds}{'0' * (point - len(ds))}"
    return f"{sign}{ds[:point]}.{ds[point:]}"


def _shortest_f32(f):
    import struct
    target = struct.unpack("f", struct.pack("f", f))[0]
    for prec in range(1, 10):
        s = f"{target:.{prec}g}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == target:
            return s
    return repr(target)


# ---------------------------------------------------------------------------------------
# Talking to the server
# ---------------------------------------------------------------------------------------


class ConnectionLost(Exception):
    pass


class Timeout(Exception):
    pass


@dataclass
class Result:
    error: str | None = None
    sqlstate: str | None = None
    rows: list | None = None  # list of list[str] (rendered)
    oids: list = field(default_factory=list)
    command_rows: int | None = None  # row count from the command tag (INSERT 0 3 -> 3)


def _render(raw, oid):
    if raw is None:
        return "NULL"
    text = raw.decode("utf-8", errors="replace")
    if OID_KIND.get(oid) == "text":
        text = text.rstrip("\n").replace("\x00", "\\0")
    return "(empty)" if text == "" else text


def execute(pgconn, sql, timeout=RECORD_TIMEOUT_S):
    from psycopg import pq

    try:
        pgconn.send_query(sql.encode())
    except Exception as e:  # noqa: BLE001 - libpq raises OperationalError on a dead socket
        raise ConnectionLost(str(e)) from e
    deadline = time.monotonic() + timeout
    cancelled = False
    results = []
    while True:
        while pgconn.is_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if cancelled:
                    raise Timeout(f"no answer {timeout:.0f}s after cancel")
                pgconn.get_cancel().cancel()
                cancelled = True
                deadline = time.monotonic() + 10
                continue
            ready, _, _ = select.select([pgconn.socket], [], [], min(remaining, 1.0))
            if ready:
                try:
                    pgconn.consume_input()
                except Exception as e:  # noqa: BLE001
                    raise ConnectionLost(str(e)) from e
        res = pgconn.get_result()
        if res is None:
            break
        if res.status == pq.ExecStatus.COPY_IN:
            pgconn.put_copy_end(b"COPY FROM STDIN is not used by these tests")
        results.append(res)
    if pgconn.status != pq.ConnStatus.OK:
        raise ConnectionLost((pgconn.error_message or b"").decode(errors="replace"))
    if cancelled:
        raise Timeout(f"cancelled after {timeout:.0f}s")
    out = Result()
    for res in results:
        if res.status == pq.ExecStatus.FATAL_ERROR:
            msg = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message or b"").decode(errors="replace")
            state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
            return Result(error=msg.strip(), sqlstate=state)
    if not results:
        return Result(error="no result", sqlstate="")
    last = results[-1]
    if last.status == pq.ExecStatus.TUPLES_OK:
        out.oids = [last.ftype(c) for c in range(last.nfields)]
        out.rows = [[_render(last.get_value(r, c), out.oids[c]) for c in range(last.nfields)] for r in range(last.ntuples)]
    elif last.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_IN):
        out.command_rows = last.command_tuples
    else:
        return Result(error=f"unexpected result status {last.status}", sqlstate="")
    return out


# ---------------------------------------------------------------------------------------
# Running a file
# ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    file: str
    line: int
    kind: str  # statement | query
    status: str  # pass | fail | skip
    sql: str
    reason: str = ""  # skip reason / failure cause
    detail: str = ""  # error message, or diff
    expected: list = field(default_factory=list)  # DataFusion's text
    expected_pg: list = field(default_factory=list)  # the same, converted (best effort, for reports)
    got: list = field(default_factory=list)
    include: str = ""  # included file the record came from, when not the file itself


_EXPLAIN = re.compile(r"^\s*explain\b", re.I)
_CREATES = re.compile(r"^\s*create\s+(?:or\s+replace\s+)?(?:(?:temporary|temp|unbounded|external)\s+)*(table|view)\s+(?:if\s+not\s+exists\s+)?([\w.\"]+)", re.I)
_INSERTS = re.compile(r"^\s*insert\s+(?:or\s+\w+\s+)?into\s+([\w.\"]+)", re.I)
_SELECT_INTO = re.compile(r"^\s*select\b[\s\S]*?\binto\s+(?:temp(?:orary)?\s+|unlogged\s+)?(?:table\s+)?([\w.\"]+)\s", re.I)
_SET_DIALECT = re.compile(r"^\s*set\s+datafusion\.sql_parser\.dialect\s*(?:=|to)\s*'?(\w+)'?", re.I)
_MODIFIES = re.compile(r"^\s*(?:delete\s+from|update)\s+([\w.\"]+)", re.I)
_DROPS = re.compile(r"^\s*drop\s+(?:table|view)\s+(?:if\s+exists\s+)?([\w.\"]+)", re.I)


_SET_TZ = re.compile(r"^\s*set\s+(?:time\s+zone|timezone|datafusion\.execution\.time_zone)\s*(?:=|to)?\s*'?([^';\s]*)'?\s*;?\s*$", re.I)


def parse_time_zone(name):
    """A time zone value as DataFusion reads it (ISO sign convention for offsets)."""
    import zoneinfo
    if name.upper() in ("UTC", "Z", "GMT", ""):
        return None
    m = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", name)
    if m:
        off = dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return dt.timezone(-off if m.group(1) == "-" else off)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _obj(name):
    return name.replace('"', "").split(".")[-1].lower()


def strip_sql_comments(sql):
    return "\n".join(l for l in sql.split("\n") if not l.lstrip().startswith("--"))


def expand_last_cell(rows):
    """DataFusion's harness prints a multi-line last cell as extra `NN)line` rows."""
    out = []
    for row in rows:
        if row and "\n" in row[-1]:
            out.append(row[:-1])
            for k, l in enumerate(row[-1].split("\n"), 1):
                content = l.lstrip()
                out.append([f"{k:02d}){'-' * (len(l) - len(content))}{content}"])
        else:
            out.append(row)
    return out


class FileRunner:
    """Runs one parsed file over a connection. `reconnect()` is called after a lost
    connection (it must return a new pgconn, restarting the server if it died)."""

    def __init__(self, rel, records, pgconn, reconnect):
        self.rel = rel
        self.records = records
        self.pgconn = pgconn
        self.reconnect = reconnect
        self.harness = [re.compile(rf"\b{re.escape(n)}\b", re.I) for n in HARNESS_OBJECTS.get(Path(rel).name, [])]
        self.hash_threshold = 0
        self.sortmode = None
        self.unavailable = set()  # tables backed by data files we do not have
        self.broken = {}  # object name -> cause of the failure that left it missing/incomplete
        self.outcomes = []
        self.float_text_deviations = []
        self.error_regex = Counter()
        self.aborted = None
        self.tz = None  # session time zone set by the file (None = UTC, the server's default)
        self.dialect = None  # SQL dialect the file asked DataFusion for

    def run(self):
        for rec in self.records:
            if rec.kind == "halt":
                break
            if rec.kind == "hash-threshold":
                self.hash_threshold = int(rec.value)
                continue
            if rec.kind == "sortmode":
                self.sortmode = rec.value
                continue
            if rec.kind == "sleep":
                continue
            self.outcomes.append(self.run_record(rec))
        return self

    def skip_reason(self, rec):
        for cond, label in rec.conditions:
            hit = label.lower() == ENGINE_LABEL
            if (cond == "onlyif" and not hit) or (cond == "skipif" and hit):
                return f"{cond} {label}"
        if _EXPLAIN.match(strip_sql_comments(rec.sql)):
            return "EXPLAIN (plans differ by design)"
        for pat in self.harness:
            if pat.search(rec.sql):
                return "uses an object registered by DataFusion's Rust test harness"
        sql = strip_sql_comments(rec.sql)
        path = data_file(sql)
        refs = {n for n in self.unavailable if re.search(rf"\b{re.escape(n)}\b", sql, re.I)}
        created = _CREATES.match(sql)
        if created and not path and refs == {_obj(created.group(2))}:
            self.unavailable.discard(_obj(created.group(2)))  # re-created from SQL alone
            refs = set()
        if path or refs:
            m = _CREATES.match(sql) or _INSERTS.match(sql) or _SELECT_INTO.match(sql)
            if m and rec.expect != "error":
                self.unavailable.add(_obj(m.group(m.lastindex)))
            return "needs a data file from DataFusion's source tree" if path else "uses a table backed by DataFusion's data files"
        if rec.expect == "results" and len(rec.results) == 1 and " values hashing to " in rec.results[0]:
            if any(t not in "IT" for t in rec.types):
                return "md5-hashed result over non-I/T columns"
        if self.aborted:
            return f"file aborted: {self.aborted}"
        return None

    def run_record(self, rec):
        rel_inc = "" if Path(rec.path).name == Path(self.rel).name else Path(rec.path).name
        out = Outcome(self.rel, rec.line, rec.kind, "skip", rec.sql, include=rel_inc)
        reason = self.skip_reason(rec)
        if reason:
            out.reason = reason
            return out
        try:
            res = execute(self.pgconn, rec.sql)
        except Timeout as e:
            out.status, out.reason, out.detail = "fail", "timeout", str(e)
            self.taint(rec, out.reason)
            return out
        except ConnectionLost as e:
            out.status, out.reason, out.detail = "fail", "connection lost (server crash?)", str(e)
            self.taint(rec, out.reason)
            try:
                self.pgconn = self.reconnect()
            except Exception as e2:  # noqa: BLE001
                self.aborted = f"could not reconnect: {e2}"
            return out
        status, reason, detail = self.judge(rec, res, out)
        out.status, out.reason, out.detail = status, reason, detail
        dialect_sensitive = "PG dialect" in reason or reason.startswith(("SQL parse error", "error:", "lambda"))
        if status == "fail" and dialect_sensitive and self.dialect not in (None, "generic", "postgresql", "postgres"):
            reason = out.reason = (f"SET datafusion.sql_parser.dialect = {self.dialect} has no effect "
                                   "(the server always parses PostgreSQL)")
        if status == "fail":
            cascade = self.cascade(rec)
            if cascade and (reason.startswith("wrong") or reason in CASCADING_ERRORS):
                out.reason = f"after failed setup: {cascade}"
            self.taint(rec, out.reason)
        else:
            self.untaint(rec)
            if rec.kind == "statement" and rec.expect == "ok":
                self.track_settings(rec.sql)
        return out

    def track_settings(self, sql):
        """Follows the session time zone and the SQL dialect a file asks for."""
        m = _SET_TZ.match(strip_sql_comments(sql))
        if m:
            self.tz = parse_time_zone(m.group(1))
        m = _SET_DIALECT.match(strip_sql_comments(sql))
        if m:
            self.dialect = m.group(1).lower()

    def cascade(self, rec):
        for name, cause in self.broken.items():
            if re.search(rf"\b{re.escape(name)}\b", rec.sql, re.I):
                return cause
        return None

    def taint(self, rec, cause):
        sql = strip_sql_comments(rec.sql)
        m = _CREATES.match(sql) or _INSERTS.match(sql) or _MODIFIES.match(sql) or _SELECT_INTO.match(sql)
        if m and rec.expect != "error":
            name = _obj(m.group(m.lastindex))
            root = cause[len("after failed setup: "):] if cause.startswith("after failed setup: ") else cause
            self.broken.setdefault(name, root)

    def untaint(self, rec):
        sql = strip_sql_comments(rec.sql)
        m = _DROPS.match(sql)
        if m:
            self.broken.pop(_obj(m.group(1)), None)
        m = _CREATES.match(sql)
        if m and rec.expect != "error":
            self.broken.pop(_obj(m.group(2)), None)

    def judge(self, rec, res, out):
        if rec.expect == "error":
            if res.error is None:
                if INTROSPECTION.search(strip_sql_comments(rec.sql)):
                    return "fail", "no error raised where DataFusion raises one: information_schema / SHOW (off by default in DataFusion, on in ours)", ""
                return "fail", "no error raised where DataFusion raises one", ""
            if classify_error(res.error, rec.sql) in CASCADING_ERRORS and self.cascade(rec):
                # the expected error cannot be judged: the object it is about was never made
                return "fail", classify_error(res.error, rec.sql), f"{res.sqlstate}: {res.error}"
            if rec.error:
                ok = (rec.error.strip() == res.error.strip()) if rec.error_block else bool(_safe_search(rec.error, res.error))
                self.error_regex["matched" if ok else "not matched"] += 1
            return "pass", "", res.error
        if res.error is not None:
            return "fail", classify_error(res.error, rec.sql), f"{res.sqlstate}: {res.error}"
        if rec.expect == "count":
            n = (res.command_rows or 0) if res.rows is None else len(res.rows)
            return ("pass", "", "") if n == rec.count else ("fail", "wrong affected-row count", f"{n} != {rec.count}")
        if rec.kind == "statement":
            return "pass", "", ""
        # query with results
        rows, oids = res.rows, res.oids
        if rows is None:
            if res.command_rows is not None and len(rec.types) == 1:
                rows, oids = [[str(res.command_rows)]], [20]
            else:
                rows, oids = [], []
        letters = rec.types
        cols = [Col(letters[i] if i < len(letters) else "?", oids[i], self.tz) for i in range(len(oids))]
        rows = expand_last_cell(rows)
        rows = [r[:-1] + [r[-1].rstrip()] if r else r for r in rows]
        expected = [l.rstrip() for l in rec.results]
        out.expected = expected
        out.got = [" ".join(r) for r in rows]
        out.expected_pg = [l if l == "NULL" else to_pg(l, cols[0]) if len(cols) == 1 else
                           " ".join(c if c == "NULL" else to_pg(c, col) for c, col in zip(l.split(" "), cols))
                           if len(l.split(" ")) == len(cols) else l for l in expected]
        self.note_float_text(rows, cols)
        if len(expected) == 1 and " values hashing to " in expected[0]:
            return self.judge_hash(rec, rows, expected[0])
        if any(IGNORE_MARKER in l for l in expected):
            ok = ignore_marker_match(expected, out.got)
            return ("pass", "", "") if ok else ("fail", "wrong result: text around <slt:ignore> differs", "")
        if letters and len(oids) != len(letters) and rows:
            why = "catalog introspection differs (SHOW / DESCRIBE / information_schema)" if INTROSPECTION.search(strip_sql_comments(rec.sql)) else "wrong column count"
            return "fail", why, f"{len(oids)} columns, DataFusion has {len(letters)}"
        sort = rec.sort or self.sortmode or "nosort"
        if sort == "rowsort":
            ok = rows_match_unordered(expected, rows, cols) if all(len(r) == len(cols) for r in rows) else out.got == sorted(expected)
        elif sort == "valuesort":
            ok = values_match_unordered(expected, rows, cols)
        else:
            ok = len(expected) == len(rows) and all(
                split_match(e, r, cols) if len(r) == len(cols) else e == " ".join(r) for e, r in zip(expected, rows))
        if ok:
            return "pass", "", ""
        return "fail", classify_mismatch(expected, rows, cols, rec.sql, sort), ""

    def judge_hash(self, rec, rows, line):
        count, _, digest = line.partition(" values hashing to ")
        srt = rec.sort or self.sortmode or "nosort"
        if srt == "rowsort":
            rows = sorted(rows)
        values = [v for r in rows for v in r]
        if srt == "valuesort":
            values.sort()
        md5 = hashlib.md5("".join(v + "\n" for v in values).encode()).hexdigest()
        if len(values) == int(count) and md5 == digest.strip():
            return "pass", "", ""
        return "fail", "wrong result (hashed result differs)", f"{len(values)} values hashing to {md5}"

    def note_float_text(self, rows, cols):
        for i, c in enumerate(cols):
            if c.oid in (700, 701):
                for r in rows:
                    if i < len(r) and r[i] != "NULL":
                        want = pg_float_text(r[i], c.oid)
                        if want != r[i]:
                            self.float_text_deviations.append((r[i], want))


IGNORE_MARKER = "<slt:ignore>"


def ignore_marker_match(expected, got):
    """DataFusion's `<slt:ignore>` wildcard: the fragments between markers must appear in
    order in the actual output (compared as text, unconverted)."""
    exp, act = "\n".join(expected), "\n".join(got)
    pos = 0
    for i, frag in enumerate(exp.split(IGNORE_MARKER)):
        if not frag:
            continue
        idx = act.find(frag, pos)
        if idx < 0 or (i == 0 and idx != 0):
            return False
        pos = idx + len(frag)
    return True


def _safe_search(pattern, text):
    try:
        return re.search(pattern, text)
    except re.error:
        return None


# ---------------------------------------------------------------------------------------
# Failure causes (used to rank what to fix; mechanical, by message)
# ---------------------------------------------------------------------------------------

# Errors that a missing object explains (the object a failed CREATE should have made).
CASCADING_ERRORS = {"relation does not exist", "table not found"}

# (regex on our server's error message, regex on the SQL or None, label). First match wins.
ERROR_CAUSES = [
    (r"because other objects depend on it", None,
     "DROP of what a view reads refused without CASCADE (PostgreSQL's 2BP01; DataFusion does not track view dependencies)"),
    (r"^relation .* does not exist", None, "relation does not exist"),
    (r"table '.*' not found|No table named", None, "table not found"),
    (r"CREATE TABLE \.\.\. AS SELECT is not supported", None, "CREATE TABLE ... AS (CTAS) unsupported"),
    (r"schema provider does not support registering tables", r"^\s*select\b", "SELECT ... INTO <new table> unsupported (\"schema provider does not support registering tables\")"),
    (r"schema provider does not support registering tables|DROP VIEW is not supported", None,
     "CREATE VIEW / DROP VIEW unsupported (\"schema provider does not support registering tables\")"),
    (r".", r"^\s*create\s+(or\s+replace\s+)?(unbounded\s+)?external\s+table\b", "CREATE EXTERNAL TABLE unsupported"),
    (r".", r"^\s*copy\b[\s\S]*\bto\s+'", "COPY ... TO 'file' unsupported"),
    (r"Unsupported SQL statement: RESET", None, "RESET <setting> unsupported"),
    (r"unrecognized configuration parameter", r"^\s*show\b", "SHOW datafusion.* / SHOW ALL unsupported (\"unrecognized configuration parameter\")"),
    (r"Error setting config datafusion\.runtime", None, "SET datafusion.runtime.* rejected (memory_limit, temp_directory, ...)"),
    (r"Unsupported List Datatype", None, "nested list result (List(List(...))) not encodable over PG wire"),
    (r"Unsupported Datatype", None, "result type not encodable over PG wire"),
    (r"No field named \w+\.", r"\w+\s*->", "lambda `x -> expr` is read as the JSON -> operator (PG dialect)"),
    (r"sql parser error", r"\bmap\s*\{", "MAP {k: v} literal not parsed (PG dialect)"),
    (r"sql parser error", r"\{\s*'?\w+'?\s*:", "struct literal {a: 1} not parsed (PG dialect)"),
    (r"sql parser error: Expected: .* found: <|Unsupported SQL type struct", r"(?i)struct\s*[<(]|array\s*<|map\s*<", "STRUCT<...> / STRUCT(...) / ARRAY<...> type syntax unsupported"),
    (r"sql parser error|table function 'values' not found", r"\bfrom\s+values\b", "FROM VALUES (...) without parentheses not accepted (PG dialect)"),
    (r"sql parser error", r"\|>", "pipe operator |> not parsed"),
    (r"sql parser error", r"\*\s*(except|exclude)\b", "SELECT * EXCEPT/EXCLUDE (...) not parsed (PG dialect reads EXCEPT as set operation)"),
    (r"not supported on stream tables|stream tables are append-only", None, "UPDATE/DELETE unsupported (append-only by design)"),
    (r"sql parser error", None, "SQL parse error (Postgres-dialect parser)"),
]


def classify_error(msg, sql):
    sql = strip_sql_comments(sql)
    for msg_re, sql_re, label in ERROR_CAUSES:
        if re.search(msg_re, msg, re.I) and (sql_re is None or re.search(sql_re, sql, re.I)):
            if label.startswith("SQL parse error"):
                return f"{label}: {_shape(msg)}"
            if label.startswith("result type"):
                m = re.search(r"Unsupported Datatype (\w+)", msg)
                return f"{label}: {m.group(1) if m else '?'}"
            return label
    return "error: " + _shape(msg)


def _shape(msg):
    first = msg.strip().split("\n")[0]
    first = re.sub(r"^(DataFusion error: |ERROR: +)", "", first)
    first = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "?", first)
    first = re.sub(r"\b\d+(\.\d+)?\b", "N", first)
    return first[:110]


# Known ways our text differs from PostgreSQL's, each undone on the actual value to see
# whether it explains a mismatch. Ordered by priority: the first one needed names the cause.
_TIME_RE = r"\d\d:\d\d:\d\d"


def _quote_spaced_elements(a):
    """`{2021-01-01 00:00:00,x}` -> `{"2021-01-01 00:00:00",x}` (PG's array_out quoting)."""
    if not (a.startswith("{") and a.endswith("}")):
        return a
    out, i, cur = [], 0, ""

    def flush(cur):
        return f'"{cur}"' if cur and not cur.startswith('"') and any(c.isspace() for c in cur) else cur
    while i < len(a):
        ch = a[i]
        if ch == '"':
            j = i + 1
            while j < len(a) and a[j] != '"':
                j += 2 if a[j] == "\\" else 1
            cur += a[i:j + 1]
            i = j + 1
            continue
        if ch in "{},":
            out.append(flush(cur) + ch)
            cur = ""
        else:
            cur += ch
        i += 1
    return "".join(out) + flush(cur)


def _to_session_offset(m, tz):
    """`2000-01-01 00:00:00.5+08` shown in the session zone, keeping the fraction text."""
    base, frac, off = m.group(1), m.group(2) or "", m.group(3)
    conv = pg_timestamp(base.replace(" ", "T") + off, tz=tz)
    cm = re.fullmatch(r"(\S+ \d\d:\d\d:\d\d)([+-]\S+)", conv)
    return f"{cm.group(1)}{frac}{cm.group(2)}" if cm else m.group(0)


def _hours_to_days(a):
    m = re.fullmatch(r"(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)", a)
    if not m or int(m.group(2)) < 24:
        return a
    d, h = divmod(int(m.group(2)), 24)
    sign = m.group(1)
    days = f"{sign}{d} day{'' if d == 1 and not sign else 's'}"
    if h == 0 and m.group(3) == "00" and float(m.group(4)) == 0:
        return days
    return f"{days} {sign}{h:02d}:{m.group(3)}:{m.group(4)}"


# Known ways our text differs from PostgreSQL's, each undone on the actual value to see
# whether it explains a mismatch: (name, undo(actual, col)). Ordered by priority: the
# first one of the smallest set that explains a mismatch names the cause.
DEVIATIONS = [
    ("timestamp carries a time zone where DataFusion's has none (the server sets datafusion.execution.time_zone = 'UTC')",
     lambda a, c: re.sub(r', "UTC"\)', ")", re.sub(rf"({_TIME_RE}(?:\.\d+)?)\+00(?![\d:])", r"\1", a))),
    ("timestamptz printed in its own offset, not in the session TimeZone",
     lambda a, c: re.sub(rf"(\d{{4}}-\d\d-\d\d {_TIME_RE})(\.\d+)?([+-]\d\d(?::\d\d)?)(?![\d:])",
                         lambda m: _to_session_offset(m, c.tz), a)),
    ("SET TIME ZONE does not reach DataFusion: value read and shown in UTC, not the session zone",
     lambda a, c: re.sub(rf"(\d{{4}}-\d\d-\d\d {_TIME_RE}(?:\.\d+)?)\+00(?![\d:])",
                         lambda m: m.group(1) + _offset_text(dt.datetime.fromisoformat(m.group(1)[:19]).replace(tzinfo=c.tz).utcoffset()), a)
     if c.tz is not None else a),
    ("interval from a Duration printed as hours only (PG prints days: '63 days 15:00:00')", lambda a, c: _hours_to_days(a)),
    ("array element containing spaces is not double-quoted (PG's array_out quotes it)", lambda a, c: _quote_spaced_elements(a)),
    ("date/timestamp year > 9999 printed with a '+' sign (PG prints none)",
     lambda a, c: re.sub(r"(?<![\d:])\+(\d{5,}-\d\d-\d\d)", r"\1", a)),
    ("BC date printed with a minus sign (PG prints 'YYYY-MM-DD BC')",
     lambda a, c: re.sub(r"^-(\d{4,})-(\d\d)-(\d\d)$", lambda m: f"{int(m.group(1)) + 1:04d}-{m.group(2)}-{m.group(3)} BC", a)),
    ("NULL struct field printed as \"\" (PG's record_out prints nothing for NULL)",
     lambda a, c: re.sub(r'(?<=[(,])""(?=[,)])', "", a) if c.kind in ("record", "array") else a),
    ("time/timestamp/interval printed with a .000000 fraction (PG omits a zero fraction)",
     lambda a, c: re.sub(rf"({_TIME_RE})\.000000(?!\d)", r"\1", a)),
    ("time/timestamp/interval fraction keeps trailing zeros (PG trims them)",
     lambda a, c: re.sub(rf"({_TIME_RE})\.(\d*?)0+(?!\d)", lambda m: m.group(1) + ("." + m.group(2) if m.group(2) else ""), a)),
]
INTROSPECTION = re.compile(r"^\s*(show|describe|desc)\b|information_schema|\bdf_settings\b", re.I)


def _undo_subsets():
    """Index subsets of DEVIATIONS, smallest first, then by priority."""
    import itertools
    n = len(DEVIATIONS)
    return [c for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]


_SUBSETS = None


def _explain_values(exp_ok, values, cols):
    """The name of the highest-priority deviation in the smallest set of deviations whose
    undoing makes `exp_ok(values)` true, or None."""
    global _SUBSETS
    _SUBSETS = _SUBSETS or _undo_subsets()
    for subset in _SUBSETS:
        fixed = values
        for i in subset:
            fixed = [DEVIATIONS[i][1](v, c) for v, c in zip(fixed, cols)]
        if fixed != values and exp_ok(fixed):
            return DEVIATIONS[subset[0]][0]
    return None


def explain_cell(exp, act, col):
    """None if the cell matches, else the name of the known deviation that explains the
    difference, else a generic description."""
    if cell_match(exp, act, col):
        return None
    if exp != "NULL" and act != "NULL":
        why = _explain_values(lambda v: cell_match(exp, v[0], col), [act], [col])
        if why:
            return why
        if col.kind in ("timestamp", "timestamptz", "datetime", "time") and to_pg(exp, col, truncate=True) != to_pg(exp, col):
            if _explain_values(lambda v: to_pg(exp, col, truncate=True) == v[0], [act], [col]) or to_pg(exp, col, truncate=True) == act:
                return "sub-microsecond digits truncated (PG rounds to the nearest microsecond)"
    return f"{col.kind} value differs"


def _explain_row(line, row, cols):
    """Splits like split_match, but explains the first cell that differs."""
    if len(row) != len(cols):
        return "multi-line value"
    cells = line.split(" ")
    if len(cells) == len(row):
        for e, a, c in zip(cells, row, cols):
            why = explain_cell(e, a, c)
            if why:
                return why
        return None
    # values with spaces: let the known deviations rewrite the whole row, then retry
    why = _explain_values(lambda fixed: split_match(line, fixed, cols), list(row), cols)
    if why:
        return why
    kinds = sorted({c.kind for c in cols})
    return f"value differs ({'/'.join(kinds)} columns)"


def classify_mismatch(expected, rows, cols, sql="", sort="nosort"):
    if INTROSPECTION.search(strip_sql_comments(sql)):
        return "wrong result: catalog introspection differs (SHOW / DESCRIBE / information_schema)"
    if len(expected) != len(rows):
        return "wrong result: row count differs"
    if sort == "nosort" and all(len(r) == len(cols) for r in rows) and rows_match_unordered(expected, rows, cols):
        return "wrong result: row order differs"
    pairs = list(zip(expected, rows))
    if sort != "nosort":  # pair rows by their position in sorted order, as well as we can
        pairs = list(zip(sorted(expected), sorted(rows, key=lambda r: " ".join(r))))
    generic = None
    for e, r in pairs:
        if split_match(e, r, cols):
            continue
        why = _explain_row(e, r, cols)
        if why and "value differs" not in why:
            return f"wrong result: {why}"
        generic = generic or why
    return f"wrong result: {generic or 'value differs'}"
