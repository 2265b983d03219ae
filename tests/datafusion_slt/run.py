"""Runs the selected DataFusion .slt files, each against its own fresh StreamHouse server,
and summarizes: records passed / failed / skipped per file, and failures by cause.

    STREAMHOUSE_BIN=... python tests/datafusion_slt/run.py [-j 2] [-k substring] \
        [--json results.json] [--failures N]

The pytest entry point is tests/python/test_datafusion_slt.py (ratchet on baseline.json)."""

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import dfslt  # noqa: E402
import fetch  # noqa: E402

BASELINE = HERE / "baseline.json"
WAL_FILE_SIZE = 4 << 20

# Files we do not run although they could start: too slow for the suite's time budget
# on two cores, with the reason. (Everything else that can run, runs.)
SLOW = {}


@dataclass
class FileResult:
    file: str
    skipped_file: str | None = None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    outcomes: list = field(default_factory=list)
    float_text_deviations: list = field(default_factory=list)
    error_regex: dict = field(default_factory=dict)
    crashed: str | None = None


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.slt"))


def selection(root):
    """[(relative path, skip reason or None)] for every .slt file of the crate."""
    out = []
    for rel in all_files(root):
        reason = dfslt.file_skip_reason(rel, (root / rel).read_text(encoding="utf-8"))
        if reason is None and rel in SLOW:
            reason = SLOW[rel]
        out.append((rel, reason))
    return out


def run_file(root, rel, workdir):
    import psycopg
    from conftest import Server

    res = FileResult(rel)
    start = time.monotonic()
    records = dfslt.parse_file(root / rel)
    data = Path(workdir) / rel.replace("/", "__")
    # Small WAL files: the default preallocates 64 MiB per file and a run starts ~250 servers.
    server = Server(data, ["--wal-file-size", str(WAL_FILE_SIZE)])
    state = {"conn": None}

    def connect():
        if state["conn"] is not None:
            try:
                state["conn"].close()
            except Exception:  # noqa: BLE001
                pass
        if server.proc.poll() is not None:
            res.crashed = (res.crashed or "") + f"server exited with {server.proc.returncode}, restarted; "
            server.start()
        state["conn"] = psycopg.connect(server.dsn(), autocommit=True, connect_timeout=10)
        return state["conn"].pgconn

    try:
        server.start()
        runner = dfslt.FileRunner(rel, records, connect(), connect).run()
    finally:
        try:
            if state["conn"] is not None:
                state["conn"].close()
        except Exception:  # noqa: BLE001
            pass
        server.stop(9)
        shutil.rmtree(data, ignore_errors=True)
    counts = Counter(o.status for o in runner.outcomes)
    res.passed, res.failed, res.skipped = counts["pass"], counts["fail"], counts["skip"]
    res.outcomes = runner.outcomes
    res.float_text_deviations = runner.float_text_deviations
    res.error_regex = dict(runner.error_regex)
    res.seconds = time.monotonic() - start
    return res


def run_selected(root, rels, jobs=2, workdir=None, progress=None):
    """Runs files (longest first, so the pool ends evenly); returns {rel: FileResult}."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="df-slt-")
    sizes = {rel: (root / rel).stat().st_size for rel in rels}
    order = sorted(rels, key=lambda r: -sizes[r])
    results = {}
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for res in pool.map(lambda r: run_file(root, r, workdir), order):
                results[res.file] = res
                if progress:
                    progress(res)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return dict(sorted(results.items()))


def summarize(results, skipped_files, top=40):
    lines = []
    passed = sum(r.passed for r in results.values())
    failed = sum(r.failed for r in results.values())
    skipped = sum(r.skipped for r in results.values())
    run = passed + failed
    lines.append(f"files run: {len(results)}, files skipped: {len(skipped_files)}")
    lines.append(f"records: {run + skipped} (passed {passed}, failed {failed}, skipped {skipped}); "
                 f"pass share of records run: {passed / max(run, 1):.1%}")
    causes, examples = cause_table(results)
    lines.append("failures by cause (root cause; 'after failed setup' counts records that failed on "
                 "objects a failed CREATE/INSERT left missing):")
    for cause, (direct, cascaded) in sorted(causes.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:top]:
        ex = examples[cause]
        lines.append(f"  {direct + cascaded:6d}  ({direct} direct + {cascaded} cascaded)  {cause}   e.g. {ex.file}:{ex.line}")
    kinds, ex = float_text_summary(results)
    if kinds:
        lines.append("float text that differs from PostgreSQL's (tolerated: R columns compare numerically):")
        for k, n in kinds.most_common():
            lines.append(f"  {n:6d}  {k}   e.g. {ex[k][0]!r}, PG prints {ex[k][1]!r}")
    regex = Counter()
    for r in results.values():
        regex.update(r.error_regex)
    if regex:
        lines.append(f"expected errors whose DataFusion message regex also matched ours: "
                     f"{regex['matched']} of {regex['matched'] + regex['not matched']} (not enforced)")
    return "\n".join(lines)


def float_text_summary(results):
    """How our float8/float4 text differs from what PostgreSQL prints (not failures: floats
    are compared numerically)."""
    kinds = Counter()
    examples = {}
    for r in results.values():
        for got, want in r.float_text_deviations:
            if got.endswith(".0") and got[:-2] == want:
                k = "integral value printed with '.0' (PG: '1')"
            elif got.lower() in ("inf", "-inf", "+inf", "nan"):
                k = "infinity/NaN spelled like Rust (PG: 'Infinity', '-Infinity', 'NaN')"
            elif "e" in got.lower() or "e" in want:
                k = "exponent format (PG: '1e+20', '1e-07')"
            else:
                k = "other"
            kinds[k] += 1
            examples.setdefault(k, (got, want))
    return kinds, examples


def cause_table(results):
    causes = defaultdict(lambda: [0, 0])
    examples = {}
    for r in results.values():
        for o in r.outcomes:
            if o.status != "fail":
                continue
            cascaded = o.reason.startswith("after failed setup: ")
            root = o.reason[len("after failed setup: "):] if cascaded else o.reason
            causes[root][1 if cascaded else 0] += 1
            if root not in examples or (not cascaded and examples[root].reason.startswith("after")):
                examples[root] = o
    return causes, examples


def _short(text, n=300):
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def markdown_causes(results, top=60):
    """The ranked cause table with one example each (for README.md)."""
    causes, examples = cause_table(results)
    rows = ["| # | records (direct + cascaded) | cause | example |", "|---|---|---|---|"]
    for i, (cause, (direct, cascaded)) in enumerate(
            sorted(causes.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:top], 1):
        o = examples[cause]
        where = f"{o.file}:{o.line}" + (f" ({o.include})" if o.include else "")
        ex = f"`{where}` `{_short(o.sql, 160)}`"
        if o.detail and not o.expected and not o.got:
            ex += f" → {_short(o.detail, 160)}"
        elif o.expected or o.got:
            ex += (f" → DataFusion prints `{_short(' / '.join(o.expected), 120)}`, as PG text "
                   f"`{_short(' / '.join(o.expected_pg), 120)}`; we return `{_short(' / '.join(o.got), 120)}`")
        rows.append(f"| {i} | {direct + cascaded} ({direct} + {cascaded}) | {cause.replace('|', chr(92) + '|')} | {ex.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def skip_table(results, skipped_files):
    reasons = Counter(o.reason for r in results.values() for o in r.outcomes if o.status == "skip")
    files = Counter(why.split(" (")[0] for _, why in skipped_files)
    lines = ["| skipped | count | reason |", "|---|---|---|"]
    lines += [f"| files | {n} | {why} |" for why, n in files.most_common()]
    lines += [f"| records | {n} | {why} |" for why, n in reasons.most_common()]
    return "\n".join(lines)


def to_json(results, skipped_files):
    return {
        "files": {rel: {k: v for k, v in asdict(r).items() if k != "outcomes"} | {
            "outcomes": [asdict(o) for o in r.outcomes if o.status != "pass"]} for rel, r in results.items()},
        "skipped_files": dict(skipped_files),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("-k", action="append", default=[], help="only files whose path contains this")
    ap.add_argument("--json", help="write every non-passing record here")
    ap.add_argument("--update-baseline", action="store_true")
    ap.add_argument("--markdown", help="write the ranked cause table (markdown) here")
    args = ap.parse_args()
    root = fetch.ensure()
    sel = selection(root)
    runnable = [rel for rel, why in sel if why is None and (not args.k or any(k in rel for k in args.k))]
    skipped_files = [(rel, why) for rel, why in sel if why is not None]
    t0 = time.monotonic()
    results = run_selected(root, runnable, args.jobs, progress=lambda r: print(
        f"{r.seconds:6.1f}s {r.file}: {r.passed} passed, {r.failed} failed, {r.skipped} skipped"
        + (f"  [{r.crashed}]" if r.crashed else ""), flush=True))
    print(f"wall time {time.monotonic() - t0:.1f}s")
    print(summarize(results, skipped_files))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, skipped_files), indent=1))
    if args.markdown:
        Path(args.markdown).write_text(markdown_causes(results) + "\n\n" + skip_table(results, skipped_files) + "\n")
    if args.update_baseline:
        BASELINE.write_text(json.dumps({rel: r.passed for rel, r in results.items()}, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
