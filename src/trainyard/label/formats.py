"""Labels out and in: JSONL, CSV and Label Studio's JSON (tasks with annotations and predictions), both ways.

An import matches each task to an item by the id column (`--id-col`, or the project's, or a field named id or
row_id), else by content (the text, or the row's values); a label outside the classes, a task that matches no
item, or a file that cannot be read stops the import before anything is written.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import sqlalchemy as sa

from trainyard.errors import DataError, NotFoundError
from trainyard.label import ledger
from trainyard.label.items import ID_COLUMNS, row_sha, text_sha
from trainyard.label.project import Project, items_frame, lock_project
from trainyard.registry import tables as t
from trainyard.registry.database import now
from trainyard.registry.names import safe_stem

FORMATS = ("jsonl", "csv", "labelstudio")


def export_rows(store, project: Project) -> list[dict]:
    """One row per labelled item: its key, final label, its data, every live label with who and when."""
    items = items_frame(store, project.name)
    by_item: dict[int, list] = {}
    for a in ledger.annotations(store, project):
        by_item.setdefault(a["item_id"], []).append(a)
    rows = []
    for it in items.itertuples():
        final, given = _present(it.final), _present(it.given)
        if final is None and not by_item.get(it.id):
            continue
        rows.append({"id": it.key, "label": final, "given": given, "item_sha256": it.content_sha256, "data": it.data,
                     "suggestion": _present(it.suggestion), "confidence": _present(it.confidence),
                     "annotations": [{"annotator": a["annotator"], "label": a["label"], "queue": a["queue"], "comment": a["comment"],
                                      "item_sha256": a["item_sha256"], "created_at": a["created_at"].isoformat()} for a in by_item.get(it.id, [])]})
    return rows


def _present(value):
    """None for a missing cell (pandas turns None into NaN in some columns)."""
    return None if value is None or (isinstance(value, float) and value != value) else value


def write_export(store, project: Project, path: Path, fmt: str) -> int:
    rows = export_rows(store, project)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        elif fmt == "csv":
            _write_csv(fh, project, rows)
        else:
            json.dump([_studio_task(project, r) for r in rows], fh, ensure_ascii=False, default=str, indent=1)
    tmp.replace(path)
    return len(rows)


def _write_csv(fh, project: Project, rows: list[dict]) -> None:
    data_cols = sorted({k for r in rows if isinstance(r["data"], dict) for k in r["data"]}) or ["data"]
    writer = csv.writer(fh)
    writer.writerow(["id", project.label_column, "annotators", "comments", *data_cols])
    for r in rows:
        data = r["data"] if isinstance(r["data"], dict) else {"data": r["data"]}
        writer.writerow([r["id"], r["label"], ";".join(a["annotator"] for a in r["annotations"]),
                         " | ".join(a["comment"] for a in r["annotations"] if a["comment"]), *[data.get(c) for c in data_cols]])


def _studio_task(project: Project, r: dict) -> dict:
    """A Label Studio task: data, one annotation per annotator (choices), the model's prediction."""
    data = dict(r["data"]) if isinstance(r["data"], dict) else {"image": r["data"]}
    data["id"] = r["id"]
    if project.kind == "text":
        data["text"] = data.get(project.text_col)

    def result(label, score=None):
        value = {"from_name": "label", "to_name": "image" if project.kind == "image" else "text", "type": "choices",
                 "value": {"choices": [label]}}
        return [value] if score is None else [{**value, "score": score}]

    task = {"data": data, "annotations": [{"completed_by": a["annotator"], "created_at": a["created_at"], "result": result(a["label"])}
                                          for a in r["annotations"]]}
    if not task["annotations"] and r["label"] is not None:
        task["annotations"] = [{"completed_by": "given", "result": result(r["label"])}]
    if r["suggestion"] is not None:
        task["predictions"] = [{"model_version": "trainyard", "score": r["confidence"], "result": result(r["suggestion"], r["confidence"])}]
    return task


def read_import(path: Path) -> list[dict]:
    """The records of a CSV, JSONL or Label Studio JSON file, each {"fields": {...}, "labels": [...], "annotator": str}."""
    if not path.is_file():
        raise NotFoundError(f"No such file: {path}.", "give the CSV, JSONL or Label Studio JSON export to import.")
    text = path.read_text(encoding="utf-8", errors="strict") if path.stat().st_size < 512 * 2**20 else None
    if text is None:
        raise DataError(f"{path} is larger than 512 MiB.", "split it into smaller files.")
    try:
        if path.suffix.lower() == ".csv":
            return [{"fields": r, "labels": [], "annotator": None} for r in csv.DictReader(text.splitlines())]
        if path.suffix.lower() == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}.",
                        "export it again from the tool that made it (CSV with a header, one JSON object per JSONL line, "
                        "or Label Studio's JSON export: a list of tasks).") from None
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path} does not hold a list of tasks (objects).", "give Label Studio's JSON export (a list of tasks), or JSONL with one object a line.")
    return [_record(r) for r in records]


def _record(r: dict) -> dict:
    """A task of Label Studio (data + annotations with results), of trainyard's JSONL export (data + annotations with
    annotator and label) or a flat row."""
    data = r.get("data") if isinstance(r.get("data"), dict) else {}
    fields = {**data, **{k: v for k, v in r.items() if k not in ("data", "annotations", "predictions", "completions")}}
    out = []
    for ann in r.get("annotations") or r.get("completions") or []:
        if not isinstance(ann, dict) or ann.get("was_cancelled"):
            continue
        if "result" in ann:
            for res in ann.get("result") or []:
                choices = (res.get("value") or {}).get("choices") or []
                out += [(str(ann.get("completed_by") or "import"), c) for c in choices[:1]]
        elif "label" in ann:
            out.append((str(ann.get("annotator") or "import"), ann["label"]))
    return {"fields": fields, "labels": out, "annotator": r.get("annotator")}


def import_labels(store, project: Project, path: Path, *, id_col: str | None = None, label_col: str | None = None,
                  annotator: str = "import") -> dict:
    """Match every record to an item and record its labels, all in one transaction; nothing is written on an error."""
    records = read_import(path)
    items = items_frame(store, project.name, ("id", "key", "content_sha256"))
    by_key = dict(zip(items["key"], zip(items["id"], items["content_sha256"])))
    by_content = dict(zip(items["content_sha256"], zip(items["id"], items["content_sha256"])))
    label_col = label_col or project.label_column
    answers = []
    for n, rec in enumerate(records, 1):
        item = _match(project, rec["fields"], id_col, by_key, by_content, path, n)
        pairs = rec["labels"] or ([(rec["annotator"] or annotator, _flat_label(rec["fields"], label_col, path, n))])
        for who, label in pairs:
            if label is None or label == "":
                continue
            ledger.check_label(project, label)
            answers.append((item, str(label), _annotator_name(who)))
    stamp = now()
    with store.tx() as conn:
        lock_project(conn, project.name)
        rows = [{"project": project.name, "item_id": item_id, "request_id": uuid.uuid4().hex, "action": "label", "label": label,
                 "annotator": who, "queue": "import", "item_sha256": sha, "comment": None, "created_at": stamp}
                for (item_id, sha), label, who in answers]
        if rows:
            conn.execute(t.label_annotations.insert(), rows)
        for item_id in {item_id for (item_id, _), _, _ in answers}:
            item = dict(conn.execute(sa.select(t.label_items).where(t.label_items.c.id == item_id)).first()._mapping)
            ledger.summarise(conn, project, item)
    return {"records": len(records), "labels": len(answers), "items": len({a[0] for a in answers})}


def _flat_label(fields: dict, label_col: str, path: Path, n: int):
    for name in (label_col, "label"):
        if name in fields:
            return fields[name]
    raise DataError(f"Record {n} of {path.name} has no label (no field {label_col!r} or 'label').",
                    "name the label column with --label-col, or export with the labels included.")


def _annotator_name(who) -> str:
    return safe_stem(str(who), "import")


def _match(project: Project, fields: dict, id_col: str | None, by_key: dict, by_content: dict, path: Path, n: int):
    key_field = id_col or next((c for c in (project.id_col, *ID_COLUMNS, "image") if c and c in fields), None)
    if key_field is not None and key_field in fields and str(fields[key_field]) in by_key:
        return by_key[str(fields[key_field])]
    sha = _content_sha(project, fields)
    if sha is not None and sha in by_content:
        return by_content[sha]
    shown = f"id {fields[key_field]!r}" if key_field in fields else "its content"
    raise DataError(f"Record {n} of {path.name} matches no item of project {project.name!r} (by {shown}): the item has vanished "
                    "or the record is from another data set.",
                    "import only records of this project's data, or name the id field with --id-col.")


def _content_sha(project: Project, fields: dict) -> str | None:
    if project.kind == "text":
        text = fields.get(project.text_col, fields.get("text"))
        return None if text is None else text_sha(str(text))
    if project.kind == "image":
        return None
    row = {k: v for k, v in fields.items() if k not in (project.label_column, "label", project.id_col, *ID_COLUMNS)}
    return row_sha(row)
