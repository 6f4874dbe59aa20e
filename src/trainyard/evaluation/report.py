"""`EvaluationReport`: the data of an evaluation (a JSON-able dict) and its three renderings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from trainyard.evaluation.render import to_html, to_markdown


def jsonable(obj):
    """Plain JSON types; NaN and infinity become null so the file is valid JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


EVALUATION_FILE = "evaluation.json"  # inside the artifact, hashed with the model


class EvaluationReport:
    """An evaluation or a model card. `data` holds every number; the renderings only format it."""

    def __init__(self, data: dict):
        self.data = jsonable(data)

    def __getitem__(self, key):
        return self.data[key]

    @property
    def metrics(self) -> dict[str, dict]:
        return {r["metric"]: r for r in self.data.get("metrics", [])}

    @property
    def flags(self) -> list[str]:
        return [f for col in (self.data.get("fairness") or {}).get("columns", []) for f in col["flags"]]

    def to_dict(self) -> dict:
        return self.data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent, allow_nan=False)

    def to_markdown(self) -> str:
        return to_markdown(self.data)

    def to_html(self) -> str:
        return to_html(self.data)

    def save(self, directory, stem: str = "report") -> dict[str, Path]:
        """Write STEM.html, STEM.json and STEM.md into `directory`; returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"html": directory / f"{stem}.html", "json": directory / f"{stem}.json", "markdown": directory / f"{stem}.md"}
        paths["html"].write_text(self.to_html(), encoding="utf-8")
        paths["json"].write_text(self.to_json(), encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        return paths

    def __repr__(self) -> str:
        main = self.metrics.get(self.data.get("metric"), {})
        return f"EvaluationReport({self.data.get('metric')}={main.get('value')}, ci=({main.get('ci_low')}, {main.get('ci_high')}), rows={self.data.get('dataset', {}).get('rows')})"
