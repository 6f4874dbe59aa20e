"""Export a registered version out of trainyard's format: ONNX, or an MLflow pyfunc directory.

ONNX (`export_onnx`): for LightGBM models on trainyard's tree preprocessing (numeric, boolean and
categorical columns) the whole pipeline becomes one graph: one input per column (float for numbers and
booleans, string for categories; NaN / "" = missing), an ONNX-ML LabelEncoder per categorical column
giving LightGBM's category codes, a Concat, and the tree ensemble converted by onnxmltools. The export is
verified with onnxruntime on rows drawn from the training schema and refused if the outputs differ.
An AutoML ensemble of LightGBM models (bagged or not) becomes the weighted sum of every member's trees in
the same graph. Not supported (a clear error says why): other families (linear, random forest, XGBoost,
CatBoost, neural), ensembles with any such member, and datetime or text columns.

MLflow (`export_mlflow`): a pyfunc model directory (MLmodel, requirements, the hash-verified trainyard
artifact and a copy of trainyard's own source under code/) that `mlflow.pyfunc.load_model` loads and
`mlflow models serve` serves; its loader verifies the artifact's hashes before unpickling.
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.prepare import RARE, CategoricalCodes, SchemaCoercer
from trainyard.errors import ConfigError, TrainyardError
from trainyard.models.fastpath import as_bool, as_float, is_passthrough
from trainyard.models.model import TrainyardModel
from trainyard.models.unwrap import tree_parts, why_not
from trainyard.registry.artifact import load_artifact
from trainyard.registry.workspace import Workspace
from trainyard.serve.export_neural import export_network
import trainyard.kinds  # noqa: F401  (artifact loaders)


class ExportError(TrainyardError):
    """This model cannot be exported in the requested format."""


def prepare_dir(out: Path, force: bool) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"'{out}' already exists and is not empty.", "choose a new folder, or pass --force to replace it.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def sample_rows(schema, n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Rows drawn from the training schema (ranges, categories, missing values) for checking an export."""
    rng = np.random.default_rng(seed)
    data = {}
    for col in schema.columns:
        if col.name not in schema.features():
            continue
        if col.role == "numeric":
            lo, hi = (col.min, col.max) if col.min is not None else (0.0, 1.0)
            values = rng.uniform(lo, hi, n)
            values[: n // 3] = np.round(values[: n // 3])  # integer-valued too, like real columns
            data[col.name] = values
        elif col.role in ("categorical", "boolean") and col.categories:
            values = rng.choice(np.array(col.categories, dtype=object), n)
            if col.role == "categorical":  # values training never saw, as production brings them
                values[rng.random(n) < 0.05] = "trainyard-unseen-value"
            data[col.name] = values
        else:
            data[col.name] = np.full(n, None, dtype=object)
        if col.missing_rate > 0:
            data[col.name] = pd.Series(data[col.name], dtype=object).where(rng.random(n) > 0.15, None).to_numpy()
    return pd.DataFrame(data)


# ONNX ---------------------------------------------------------------------------------------------
def _tree_plan(model):
    """([(column, 'categorical' | 'number' | 'boolean', categories)] in LightGBM's feature order,
    [(weight, fitted LGBMModel)]), or an ExportError saying why not and what to do instead."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    fix = "export with --format mlflow instead (any model), or retrain with --include lightgbm."
    odd = sorted({model.schema.role(c) for c in model.features if model.schema.role(c) in ("datetime", "text")})
    if odd:
        raise ExportError(f"ONNX export covers numeric, boolean and categorical columns; this model also uses {', '.join(odd)} columns.", fix)
    parts = tree_parts(model)
    if parts is None:
        raise ExportError(f"ONNX export covers LightGBM models and ensembles of LightGBM models; this one ('{model.family}') cannot be: {why_not(model)}.", fix)
    if parts.libraries != {"lightgbm"}:
        raise ExportError(f"ONNX export covers LightGBM models and ensembles of LightGBM models; this one ('{model.family}') has "
                          f"{', '.join(sorted(parts.libraries))} members.", fix)
    prep = parts.prep
    if not (isinstance(prep, Pipeline) and len(prep.steps) == 2 and isinstance(prep.steps[0][1], SchemaCoercer)
            and isinstance(prep.steps[1][1], ColumnTransformer)):
        raise ExportError(f"ONNX export needs trainyard's tree preprocessing; this model ('{model.family}') uses {type(prep).__name__}.", fix)
    roles = prep.steps[0][1].roles_
    plan = []
    for name, transformer, cols in prep.steps[1][1].transformers_:
        if transformer == "drop" or (name == "remainder" and len(cols) == 0):
            continue
        if isinstance(transformer, CategoricalCodes):
            # rare and unseen values share the code after the kept categories (CategoricalCodes' '__rare__'); missing is NaN
            rare = getattr(transformer, "group_rare_", False)
            plan += [(c, "categorical", [str(v) for v in transformer.categories_[c]] + ([RARE] if rare else [])) for c in cols]
        elif is_passthrough(transformer) and all(roles.get(c) in ("numeric", "boolean") for c in cols):
            plan += [(c, "boolean" if roles[c] == "boolean" else "number", None) for c in cols]
        else:
            raise ExportError(f"ONNX export cannot translate the preprocessing step '{name}' ({type(transformer).__name__}).", fix)
    return plan, [(w, m) for w, _, m in parts.members]


def _trees_graph(members, k: int, classification: bool):
    """One ONNX model from `feature_vector` [N, k] to `label` + `probabilities` (or `variable`): the
    weighted sum of every LightGBM member's converted trees (a single member is used as converted)."""
    import onnxmltools
    from onnx import compose, helper, numpy_helper
    from onnxmltools.convert.common.data_types import FloatTensorType

    converted = []
    for _, estimator in members:
        trees = onnxmltools.convert_lightgbm(estimator, initial_types=[("feature_vector", FloatTensorType([None, k]))],
                                             target_opset=15, zipmap=False)
        for op in trees.opset_import:  # the preprocessing needs LabelEncoder with float values (ai.onnx.ml 2)
            if op.domain == "ai.onnx.ml":
                op.version = max(op.version, 2)
            elif op.domain in ("", "ai.onnx"):
                op.version = 15
        converted.append(trees)
    if len(converted) == 1:
        return converted[0]
    out = "probabilities" if classification else "variable"
    nodes, inits, summed = [], [], []
    for i, ((weight, _), trees) in enumerate(zip(members, converted)):
        part = compose.add_prefix(trees, prefix=f"m{i}_")
        nodes.append(helper.make_node("Identity", ["feature_vector"], [f"m{i}_feature_vector"], name=f"m{i}_input"))
        nodes.extend(part.graph.node)
        inits.extend(part.graph.initializer)
        inits.append(numpy_helper.from_array(np.array([weight], dtype=np.float32), f"m{i}_weight"))
        nodes.append(helper.make_node("Mul", [f"m{i}_{out}", f"m{i}_weight"], [f"m{i}_weighted"], name=f"m{i}_scale"))
        summed.append(f"m{i}_weighted")
    nodes.append(helper.make_node("Sum", summed, [out], name="trainyard_average"))
    first = converted[0].graph
    outputs = [o for o in first.output if o.name == out]
    if classification:
        nodes.append(helper.make_node("ArgMax", [out], ["label"], name="trainyard_label", axis=1, keepdims=0))
        outputs = [next(o for o in first.output if o.name == "label"), *outputs]
    graph = helper.make_graph(nodes, "trainyard_trees", list(first.input), outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=list(converted[0].opset_import), ir_version=converted[0].ir_version)


def onnx_inputs(df: pd.DataFrame, plan) -> dict[str, np.ndarray]:
    """The ONNX model's input feed for a DataFrame of raw rows (what a client of the .onnx file sends)."""
    feed = {}
    for col, kind, _ in plan:
        s = df[col] if col in df.columns else pd.Series([None] * len(df), dtype=object)
        if kind == "categorical":
            feed[col] = np.array([["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()] for v in s], dtype=object)
        else:
            conv = as_bool if kind == "boolean" else as_float
            feed[col] = np.array([[conv(None if v is None or (isinstance(v, float) and math.isnan(v)) else v)] for v in s], dtype=np.float32)
    return feed


def _category_encoder(col: str, cats: list[str], output: str, name: str):
    """An ONNX-ML LabelEncoder giving LightGBM's code of each category: its position among the kept categories;
    "" (missing) NaN; any other value (rare in training, or never seen) the rare group's code when the model
    groups them, else NaN, exactly as CategoricalCodes does."""
    from onnx import helper

    kept = [c for c in cats if c != RARE]
    other = float(len(kept)) if RARE in cats else float("nan")
    missing = [] if "" in kept else [""]
    return helper.make_node("LabelEncoder", [col], [output], name=name, domain="ai.onnx.ml", keys_strings=[*kept, *missing],
                            values_floats=[*map(float, range(len(kept))), *[float("nan")] * len(missing)], default_float=other)


def export_onnx(model, meta: dict, out: Path, *, tolerance: float = 1e-4) -> dict:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, compose, helper

    plan, members = _tree_plan(model)
    k = len(plan)
    trees = _trees_graph(members, k, model.task.is_classification)
    inputs, nodes, parts = [], [], []
    for i, (col, kind, cats) in enumerate(plan):
        if kind == "categorical":
            inputs.append(helper.make_tensor_value_info(col, TensorProto.STRING, [None, 1]))
            nodes.append(_category_encoder(col, cats, f"trainyard_code_{i}", f"trainyard_encode_{i}"))
            parts.append(f"trainyard_code_{i}")
        else:
            inputs.append(helper.make_tensor_value_info(col, TensorProto.FLOAT, [None, 1]))
            parts.append(col)
    nodes.append(helper.make_node("Concat", parts, ["feature_vector"], name="trainyard_concat", axis=1))
    prep = helper.make_model(
        helper.make_graph(nodes, "trainyard_preprocessing", inputs, [helper.make_tensor_value_info("feature_vector", TensorProto.FLOAT, [None, k])]),
        opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 2)], ir_version=trees.ir_version)
    merged = compose.merge_models(prep, trees, io_map=[("feature_vector", "feature_vector")])
    merged.graph.name = f"trainyard_{meta.get('name', 'model')}"
    info = {"name": meta.get("name"), "version": meta.get("version"), "task": model.task.value, "family": model.family,
            "lightgbm_models": len(members),
            "classes": None if model.classes is None else model.classes.tolist(),
            "inputs": [{"name": c, "type": "string" if kind == "categorical" else "float", "missing": '""' if kind == "categorical" else "NaN", **({"encoding": "1.0 true, 0.0 false"} if kind == "boolean" else {})} for c, kind, _ in plan],
            "outputs": [o.name for o in merged.graph.output]}
    for key, value in (("trainyard.model", json.dumps(info)),):
        merged.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(merged)
    # Verify: onnxruntime on rows drawn from the schema against the trainyard model itself.
    sess = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = sample_rows(model.schema)
    got = sess.run(None, onnx_inputs(rows, plan))
    if model.task.is_classification:
        expected, actual = model.predict_proba_array(rows), np.asarray(got[1])
    else:
        expected, actual = np.asarray(model.predict(rows), dtype=float), np.asarray(got[0]).ravel()
    diff = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))  # float32 inside ONNX: relative for large values
    check = {"rows": len(rows), "max_abs_diff": float(diff.max()), "share_within_tolerance": float((diff.reshape(len(rows), -1).max(axis=1) <= tolerance).mean()),
             "tolerance": tolerance}
    if check["share_within_tolerance"] < 0.99:
        raise ExportError(f"The ONNX graph does not reproduce the model: {1 - check['share_within_tolerance']:.1%} of test rows differ by more than {tolerance} "
                          f"(max {check['max_abs_diff']:.3g}).", "export with --format mlflow instead, and please report this model.")
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(merged, out / "model.onnx")
    info["verification"] = check
    (out / "trainyard-onnx.json").write_text(json.dumps(info, indent=2))
    return info


# MLflow pyfunc ------------------------------------------------------------------------------------
LOADER = '''"""MLflow pyfunc loader for a trainyard model (written by `trainyard export --format mlflow`)."""

from pathlib import Path


class TrainyardPyfunc:
    def __init__(self, model, meta):
        self.model, self.meta = model, meta

    def predict(self, model_input, params=None):
        import pandas as pd

        X = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        out = pd.DataFrame(index=X.index)
        if self.model.task.is_classification:
            proba = self.model.predict_proba_array(X)
            out["prediction"] = self.model.classes[proba.argmax(axis=1)]
            for i, c in enumerate(self.model.classes):
                out[f"proba_{c}"] = proba[:, i]
        else:
            out["prediction"] = self.model.predict(X)
        return out


def _load_pyfunc(path):
    import os

    import trainyard.kinds  # noqa: F401  (artifact loaders)
    from trainyard.registry.artifact import load_artifact

    # Every file's SHA-256 is checked against meta.json before unpickling, and meta.json's own hash against
    # TRAINYARD_MODEL_SHA256 when set: the hash `trainyard export` printed, which did not travel with this folder.
    model, meta = load_artifact(Path(path), os.environ.get("TRAINYARD_MODEL_SHA256") or None)
    return TrainyardPyfunc(model, meta)
'''


def _mlflow_type(col) -> str:
    if col.role == "boolean":  # booleans written as words in the training data stay words
        return "boolean" if col.dtype == "bool" else "string"
    if col.role == "numeric" and col.dtype.lower().startswith(("int", "uint")):
        return "long"  # MLflow refuses int64 for "double" (not a safe conversion): integer columns take integers
    return {"numeric": "double", "datetime": "datetime"}.get(col.role, "string")


def export_mlflow(model, meta: dict, artifact_dir: Path, out: Path) -> dict:
    import platform

    libs = meta.get("libraries", {})
    shutil.copytree(artifact_dir, out / "artifact")
    package = Path(__file__).resolve().parents[1]  # the trainyard package
    shutil.copytree(package, out / "code" / "trainyard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "code" / "trainyard_mlflow.py").write_text(LOADER)
    needed = ["scikit-learn", "lightgbm", "pandas", "numpy"] + [lib for lib in ("xgboost", "catboost") if lib in (model.family or "")]
    requirements = [f"{lib}=={libs[lib]}" for lib in needed if lib in libs]
    requirements += ["joblib", "scipy"]
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    py = libs.get("python", platform.python_version())
    (out / "python_env.yaml").write_text(f"python: {py}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n")
    (out / "conda.yaml").write_text("channels:\n- conda-forge\ndependencies:\n- python=" + py + "\n- pip\n- pip:\n" + "".join(f"  - {r}\n" for r in requirements) + "name: trainyard_env\n")
    inputs = [{"type": _mlflow_type(model.schema.column(c)), "name": c, "required": model.schema.column(c).missing_rate == 0} for c in model.features]
    mlmodel = {
        "flavors": {"python_function": {"loader_module": "trainyard_mlflow", "code": "code", "data": "artifact",
                                        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}, "python_version": py}},
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {"trainyard_name": meta.get("name"), "trainyard_version": meta.get("version"), "task": model.task.value,
                     "family": model.family, "data_fingerprint": meta.get("data_fingerprint")},
        "signature": {"inputs": json.dumps(inputs), "outputs": None, "params": None},
    }
    (out / "MLmodel").write_text(_yaml(mlmodel))
    return {"path": str(out), "loader_module": "trainyard_mlflow", "requirements": requirements}


def _yaml(obj, indent: int = 0) -> str:
    """A tiny YAML writer for MLmodel (nested dicts of scalars); values are JSON-quoted where needed."""
    lines = []
    pad = "  " * indent
    for key, value in obj.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            lines.append(_yaml(value, indent + 1).rstrip("\n"))
        elif value is None:
            lines.append(f"{pad}{key}: null")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"{pad}{key}: {value}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(str(value))}")
    return "\n".join(lines) + "\n"


def export(ref: str, fmt: str, out: Path, *, workspace=None, force: bool = False) -> dict:
    if fmt not in ("onnx", "mlflow"):
        raise ConfigError(f"Unknown export format '{fmt}'.", "use --format onnx or --format mlflow.")
    ws = Workspace.resolve(workspace)
    row = ws.store.resolve_model(ref)
    artifact_dir = ws.home / row["artifact_path"]
    model, meta = load_artifact(artifact_dir, row["meta_sha256"])
    meta = {**meta, "version": row["version"], "name": row["name"]}
    if not isinstance(model, TrainyardModel):  # image and language models (ONNX, checked by onnxruntime), or refused
        return export_network(model, meta, fmt, lambda: prepare_dir(out, force))
    if fmt == "onnx":
        _tree_plan(model)  # refuse before touching the output folder
        return export_onnx(model, meta, prepare_dir(out, force))
    return {**export_mlflow(model, meta, artifact_dir, prepare_dir(out, force)), "meta_sha256": row["meta_sha256"]}
