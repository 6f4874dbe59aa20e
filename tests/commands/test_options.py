"""`trainyard train`'s options come from the config objects' fields: each flag declared once, each one reaching the run
it applies to, and a flag the run would ignore refused."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from trainyard.commands.options import GROUPS, check_applies, lm_settings, neural_settings, option_fields, table_config
from trainyard.config import TrainConfig
from trainyard.engine.config import LoopConfig
from trainyard.errors import ConfigError
from trainyard.lm.settings import LMSettings
from trainyard.options import cli_fields
from trainyard.runs.settings import NeuralSettings


def test_every_flag_is_declared_in_exactly_one_config_object():
    declared = Counter(f.metadata["flag"] for _, cls in GROUPS for f in cli_fields(cls))
    assert {cls for _, cls in GROUPS} >= {TrainConfig, LoopConfig, NeuralSettings, LMSettings}
    assert declared and max(declared.values()) == 1, [flag for flag, n in declared.items() if n > 1]
    assert len(option_fields()) == sum(declared.values())
    assert all(f.metadata["help"] for _, f in option_fields())


def test_options_become_the_one_config_object_of_their_kind():
    cfg = table_config({"target": "y", "preset": "fast", "time_limit": "2m", "include": ["lightgbm,linear", "knn"], "seed": 3})
    assert (cfg.target, cfg.time_limit, cfg.include, cfg.seed, cfg.refit) == ("y", 120.0, ("lightgbm", "linear", "knn"), 3, False)
    assert table_config({"target": "y", "max_trials": 2}).trial_budget_only
    neural = neural_settings("imgs/", {"task": "image-classification", "width": 8, "epochs": 2, "grad_accum": 2, "time_limit": "30"})
    assert neural.width == 8 and neural.loop == {"epochs": 2, "grad_accum": 2, "time_limit": 30.0, "replan": True}
    lm = lm_settings({"task": "causal-lm", "epochs": 2, "lr": 0.01, "optimizer": "sgd", "separator": "\\n%\\n", "lora_r": 4})
    assert (lm.epochs, lm.lr, lm.loop, lm.separator, lm.lora_r) == (2, 0.01, {"optimizer": "sgd"}, "\n%\n", 4)


def test_a_flag_the_run_would_ignore_is_refused():
    for kind, values in (("tabular", {"epochs": 3}), ("tabular", {"base": "lm@1"}), ("deep", {"metric": "f1"}),
                         ("language-model", {"width": 8}), ("language-model", {"include": ["lightgbm"]})):
        try:
            check_applies(kind, values)
        except ConfigError as exc:
            assert "does not apply" in exc.problem
        else:
            raise AssertionError(f"{values} accepted for a {kind} run")
    check_applies("deep", {"epochs": 3, "grad_accum": 2, "width": 8, "target": "label"})
    check_applies("language-model", {"epochs": 3, "base": "lm@1", "lora": True})


def test_cli_refuses_an_ignored_flag(cli, mixed_csv):
    result = cli("train", mixed_csv, "--target", "churn", "--epochs", "3")
    assert result.code == 2 and "--epochs does not apply to table runs" in result.output and "Traceback" not in result.output


def test_every_loop_flag_reaches_the_loop_of_an_image_run(cli, tmp_path, workspace):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    X = (rng.random((64, 8, 8)) * 40).astype(np.uint8)
    X[y == 1, :4] += 180
    np.savez(tmp_path / "bands.npz", x=X, y=np.array(["low", "high"])[y])
    result = cli("train", tmp_path / "bands.npz", "--task", "image-classification", "--width", "4", "--epochs", "2",
                 "--batch-size", "16", "--optimizer", "sgd", "--lr", "0.05", "--weight-decay", "0.001", "--schedule", "constant",
                 "--warmup", "2", "--clip-norm", "0.5", "--grad-accum", "2", "--patience", "0", "--checkpoint-every", "3",
                 "--precision", "fp32", "--json")
    assert result.code == 0, result.output
    meta = json.loads(next((workspace / "artifacts" / "bands").glob("*/meta.json")).read_text())
    loop = meta["params"]["loop"]
    expected = {"epochs": 2, "optimizer": "sgd", "lr": 0.05, "weight_decay": 0.001, "schedule": "constant", "warmup": 2.0,
                "clip_norm": 0.5, "grad_accum": 2, "patience": 0, "checkpoint_every": 3, "precision": "fp32"}
    assert {k: loop[k] for k in expected} == expected
    assert meta["params"]["width"] == 4 and meta["params"]["batch_size"] == 16
