"""Fetches DataFusion's own sqllogictest files (the `datafusion-sqllogictest` crate from
crates.io, pinned by version and sha256) into a cache folder. Idempotent: a second call
only checks a marker file.

    python tests/datafusion_slt/fetch.py      # prints the test_files folder

Cache: $DF_SLT_CACHE or ~/.cache/streamhouse/datafusion-slt-55.2.0 (holds test_files/)."""

import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "55.2.0"
URL = f"https://static.crates.io/crates/datafusion-sqllogictest/datafusion-sqllogictest-{VERSION}.crate"
SHA256 = "b270cea4d8c2b2c42773e60164204386fb97d7936736e5f126ac751b86d7dabe"
PREFIX = f"datafusion-sqllogictest-{VERSION}/test_files/"


def cache_dir():
    default = Path.home() / ".cache" / "streamhouse" / f"datafusion-slt-{VERSION}"
    return Path(os.environ.get("DF_SLT_CACHE", default))


def ensure(crate_file=None):
    """Returns the folder holding DataFusion's test_files, downloading it if needed.
    `crate_file` (or $DF_SLT_CRATE) may name an already downloaded .crate; it is verified
    against the same sha256."""
    root = cache_dir()
    marker = root / ".complete"
    target = root / "test_files"
    if marker.exists() and marker.read_text().strip() == SHA256 and target.is_dir():
        return target
    crate_file = crate_file or os.environ.get("DF_SLT_CRATE")
    if crate_file:
        data = Path(crate_file).read_bytes()
    else:
        with urllib.request.urlopen(URL, timeout=120) as resp:
            data = resp.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{URL}: sha256 {digest}, expected {SHA256}")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(PREFIX) and (m.isfile() or m.isdir())]
            tar.extractall(staging, members=members, filter="data")
        if target.exists():
            shutil.rmtree(target)
        (staging / PREFIX.rstrip("/")).rename(target)
        marker.write_text(SHA256 + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else None))
