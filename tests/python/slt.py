"""A small sqllogictest runner that speaks the Postgres wire protocol (through libpq, via
psycopg's low-level connection) so expected values are exactly Postgres' text format.

Supported records: `statement ok`, `statement error [regex]`, `statement count N`,
`query <types> [nosort|rowsort|valuesort]` with `----` results, `skipif`/`onlyif <engine>`,
`halt`, comments. Values are joined by one space; NULL prints as `NULL`, '' as `(empty)`.
Set SLT_COMPLETE=1 to rewrite the expected results from the server."""

import re
from dataclasses import dataclass, field

ENGINE = "streamhouse"


@dataclass
class Record:
    kind: str  # "statement" | "query"
    line: int
    sql: str
    expect_error: bool = False
    error_regex: str = ""
    count: int | None = None
    types: str = ""
    sort: str = "nosort"
    expected: list = field(default_factory=list)
    header: str = ""


def parse(text):
    lines = text.split("\n")
    records, i, skip = [], 0, False
    while i < len(lines):
        line = lines[i].rstrip()
        if not line or line.startswith("#"):
            i += 1
            continue
        words = line.split()
        if words[0] in ("skipif", "onlyif"):
            skip = (words[0] == "skipif") == (words[1] == ENGINE)
            i += 1
            continue
        if words[0] == "halt":
            break
        start = i
        header = line
        i += 1
        sql_lines = []
        while i < len(lines) and lines[i].strip() and lines[i].strip() != "----":
            sql_lines.append(lines[i])
            i += 1
        sql = "\n".join(sql_lines)
        if words[0] == "statement":
            rec = Record("statement", start + 1, sql, header=header)
            if words[1] == "error":
                rec.expect_error = True
                rec.error_regex = " ".join(words[2:])
            elif words[1] == "count":
                rec.count = int(words[2])
        elif words[0] == "query":
            rec = Record("query", start + 1, sql, header=header)
            rec.types = words[1] if len(words) > 1 else ""
            if words[1:2] == ["error"]:
                rec.expect_error, rec.error_regex = True, " ".join(words[2:])
            rec.sort = words[2] if len(words) > 2 and words[1] != "error" else "nosort"
            if i < len(lines) and lines[i].strip() == "----":
                i += 1
                while i < len(lines) and lines[i].strip():
                    rec.expected.append(lines[i].rstrip())
                    i += 1
        else:
            raise ValueError(f"line {start + 1}: unknown record {line!r}")
        if not skip:
            records.append(rec)
        skip = False
    return records


def render(value):
    if value is None:
        return "NULL"
    text = value.decode()
    return "(empty)" if text == "" else text


def run_query(pgconn, sql):
    """Returns (rows, error_message)."""
    from psycopg import pq
    res = pgconn.exec_(sql.encode())
    status = res.status
    if status == pq.ExecStatus.FATAL_ERROR:
        return None, (res.error_message or b"").decode(errors="replace")
    rows = []
    for r in range(res.ntuples):
        rows.append(" ".join(render(res.get_value(r, c)) for c in range(res.nfields)))
    return (rows, None) if status == pq.ExecStatus.TUPLES_OK else ([], None) if status == pq.ExecStatus.COMMAND_OK else (None, f"status {status}")


def sorted_rows(rec, rows):
    if rec.sort == "rowsort":
        return sorted(rows)
    if rec.sort == "valuesort":
        return sorted(v for r in rows for v in r.split(" "))
    return rows


def run_file(pgconn, path, complete=False):
    text = open(path).read()
    failures = []
    outputs = {}
    for rec in parse(text):
        rows, err = run_query(pgconn, rec.sql)
        where = f"{path}:{rec.line}"
        if rec.expect_error:
            if err is None:
                failures.append(f"{where}: expected an error, got success\n{rec.sql}")
            elif rec.error_regex and not re.search(rec.error_regex, err):
                failures.append(f"{where}: error {err!r} does not match {rec.error_regex!r}")
            continue
        if err is not None:
            failures.append(f"{where}: unexpected error: {err}\n{rec.sql}")
            continue
        if rec.kind == "query":
            got = sorted_rows(rec, rows)
            if complete:
                outputs[rec.line] = got
            elif got != sorted_rows(rec, rec.expected):
                failures.append(f"{where}: wrong result\n{rec.sql}\nexpected:\n" + "\n".join(rec.expected) + "\ngot:\n" + "\n".join(got))
    if complete:
        rewrite(path, text, outputs)
    return failures


def rewrite(path, text, outputs):
    """Replaces the expected results of each query record (keyed by its header line)."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if (i + 1) not in outputs:
            out.append(lines[i])
            i += 1
            continue
        header_line = i + 1
        out.append(lines[i])
        i += 1
        while i < len(lines) and lines[i].strip() and lines[i].strip() != "----":
            out.append(lines[i])
            i += 1
        if i < len(lines) and lines[i].strip() == "----":
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
        out.append("----")
        out.extend(outputs[header_line])
    open(path, "w").write("\n".join(out))
