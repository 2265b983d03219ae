"""DataFusion's own sqllogictest files (crate datafusion-sqllogictest 55.2.0, fetched and
verified by tests/datafusion_slt/fetch.py) against StreamHouse over the Postgres protocol,
each file on a fresh server, with expected values converted to Postgres' text format
(tests/datafusion_slt/dfslt.py says exactly how).

Most files do not fully pass yet, so this is a ratchet: every file must pass at least as
many records as tests/datafusion_slt/baseline.json records for it. When a server change
makes more records pass, raise the baseline:

    DF_SLT_UPDATE_BASELINE=1 pytest tests/python/test_datafusion_slt.py

Other knobs: DF_SLT_FILES=array/,window.slt (only files whose path contains one of these;
the ratchet then checks only those), DF_SLT_JOBS (parallel files, default 2),
DF_SLT_RESULTS (where to write every non-passing record as JSON; default
~/.cache/streamhouse/datafusion-slt-results.json). Report: tests/datafusion_slt/README.md;
`python tests/datafusion_slt/run.py` prints the same summary outside pytest."""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "datafusion_slt"))

import fetch  # noqa: E402
import run  # noqa: E402


def test_datafusion_slt(tmp_path, capsys):
    root = fetch.ensure()
    selection = run.selection(root)
    only = [s for s in os.environ.get("DF_SLT_FILES", "").split(",") if s]
    runnable = [rel for rel, why in selection if why is None and (not only or any(s in rel for s in only))]
    skipped_files = [(rel, why) for rel, why in selection if why is not None]
    assert runnable, f"no DataFusion .slt files selected (DF_SLT_FILES={only})"

    started = time.monotonic()
    results = run.run_selected(root, runnable, int(os.environ.get("DF_SLT_JOBS", "2")), workdir=str(tmp_path))
    elapsed = time.monotonic() - started

    out = Path(os.environ.get("DF_SLT_RESULTS", Path.home() / ".cache/streamhouse/datafusion-slt-results.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run.to_json(results, skipped_files), indent=1))

    baseline = json.loads(run.BASELINE.read_text()) if run.BASELINE.exists() else {}
    if os.environ.get("DF_SLT_UPDATE_BASELINE") == "1":
        if only:
            baseline.update({rel: r.passed for rel, r in results.items()})
        else:
            baseline = {rel: r.passed for rel, r in results.items()}
        run.BASELINE.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n")

    regressions, improved = [], []
    for rel, want in sorted(baseline.items()):
        if only and rel not in results:
            continue
        if rel not in results:
            regressions.append(f"{rel}: in the baseline ({want} passing) but not run")
            continue
        got = results[rel].passed
        if got < want:
            lost = [f"    line {o.line}{' (' + o.include + ')' if o.include else ''}: {o.reason}"
                    for o in results[rel].outcomes if o.status == "fail"][:5]
            regressions.append(f"{rel}: {got} records pass, baseline {want}\n" + "\n".join(lost))
        elif got > want:
            improved.append(f"{rel}: {want} -> {got}")

    with capsys.disabled():
        print(f"\n== DataFusion sqllogictest files over the Postgres protocol ({elapsed:.0f}s)")
        print(run.summarize(results, skipped_files, top=15))
        if improved:
            print(f"{len(improved)} files pass more records than the baseline "
                  "(raise it with DF_SLT_UPDATE_BASELINE=1): " + ", ".join(improved[:10]))
        print(f"every non-passing record: {out}")

    assert not regressions, "fewer DataFusion .slt records pass than the baseline:\n" + "\n".join(regressions)
