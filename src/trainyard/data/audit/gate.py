"""The audit as the first step of a training run: block on blocking findings, record the rest with the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trainyard.data.audit.report import AuditReport, Finding
from trainyard.errors import DataError


AUDIT_SHARE = 0.15  # of a run's --time-limit, at most, for the audit before training


def audit_for_training(df: pd.DataFrame, cfg, task, store=None, run_id: str | None = None, emit=None,
                       time_limit: float | None = None) -> AuditReport:
    """Audit the training table within AUDIT_SHARE of `time_limit` (when given); raise DataError listing blocking
    findings unless cfg.force; record findings as run events."""
    from trainyard.data.audit import Settings, audit

    if emit:
        emit("stage", {"message": "auditing the data"})
    settings = Settings(max_seconds=None if time_limit is None else AUDIT_SHARE * time_limit)
    report = audit(df, cfg.target, getattr(cfg, "sensitive", ()) or (), cfg.time_col, cfg.group_col,
                   task=task.value, roles=cfg.role_overrides() or None, settings=settings)
    if store is not None and run_id is not None:
        store.add_event(run_id, "audit", "data audit: " + ", ".join(f"{v} {k}" for k, v in report.summary().items()
                                                                     if k in ("blocking", "warning", "info")),
                        data=report.to_dict())  # the whole report (findings, plots): a blocked run has no artifact
        record_findings(store, run_id, [f for f in report.findings if f.severity != "info"])
    if emit:
        emit("audit", {"report": report})
    blocking = report.blocking
    if blocking and not cfg.force:
        listed = "; ".join(f"[{f.column}] {f.what}" if f.column else f.what for f in blocking[:5])
        more = f" (and {len(blocking) - 5} more)" if len(blocking) > 5 else ""
        raise DataError(f"The data audit found {len(blocking)} blocking problem(s): {listed}{more}.",
                        "fix the data or drop the column(s) with --ignore COL, or rerun with --force to train anyway "
                        "(`trainyard audit DATA --target COL` shows the full report).")
    if blocking and store is not None and run_id is not None:
        store.add_event(run_id, "audit", f"--force: training despite {len(blocking)} blocking audit finding(s)")
    return report


def record_findings(store, run_id: str, findings: list[Finding]) -> None:
    for f in findings:
        store.add_event(run_id, "audit", f"{f.severity}: " + (f"[{f.column}] " if f.column else "") + f.what, data=f.to_dict())


def check_split(report: AuditReport, parts, features: list[str], schema, cfg, store=None, run_id: str | None = None) -> list[Finding]:
    """Rows shared by train/validation and test, and (for time or group splits) shift; added to the report and the run."""
    from trainyard.data.audit.splits import contamination, shift

    roles = {c.name: c.role for c in schema.columns}
    columns = [c for c in features if roles.get(c) not in ("id", "ignore", "text")]
    seen = pd.concat([parts.train, parts.val])
    found = contamination(seen, parts.test, columns)
    for f in found:  # trainyard made this split, so say what it means here
        f.severity = "warning"
        f.fix = "deduplicate the table, or pass --group-col with the entity key so copies stay in one split."
    if cfg.time_col or cfg.group_col:
        found += shift(seen, parts.test, columns, roles, expected_shift=f"split by time on '{cfg.time_col}'" if cfg.time_col else None,
                       seed=cfg.seed)
    for f in found:
        f.data["split"] = parts.strategy
    report.add(found)
    if store is not None and run_id is not None:
        record_findings(store, run_id, [f for f in found if f.severity != "info"])
    return found


def artifact_files(report: AuditReport, directory: Path) -> tuple[dict, dict[str, Path]]:
    """(meta['audit'] entry, extra files audit.json and audit.html written under `directory`, for the artifact)."""
    paths = report.save(Path(directory) / "audit")
    meta = {"summary": report.summary(), "findings": [f.to_dict() for f in report.findings], "files": ["audit.json", "audit.html"]}
    return meta, {"audit.json": paths["json"], "audit.html": paths["html"]}
