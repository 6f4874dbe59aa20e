"""`trainyard export` of image CNNs and language models: ONNX that onnxruntime runs to the same logits, and a clean
exit 2 naming the format that fits when another is asked for (issue 17, item 5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from lmhelp import corpus_dir, one_torch_thread, tiny_model, tokenizer  # noqa: E402,F401  (fixtures)

from trainyard.registry.workspace import Workspace  # noqa: E402


def bands(n=120, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.random((n, size, size)) * 60).astype(np.int16)
    for i in range(n):
        X[i, :size // 2] += 150 * (y[i] == 0)
        X[i, size // 2:] += 150 * (y[i] == 1)
        X[i, :, size // 3: 2 * size // 3] += 150 * (y[i] == 2)
    return X.astype(np.uint8), np.array(["top", "bottom", "middle"])[y]


def test_cnn_exports_to_onnx_that_onnxruntime_runs_to_the_same_predictions(cli, workspace, tmp_path):
    import trainyard
    from trainyard.api import train
    from trainyard.models.image import image_batch_for

    X, y = bands()
    np.savez(tmp_path / "shapes.npz", x=X, y=y)
    train(tmp_path / "shapes.npz", task="image-classification", epochs=1, width=8, batch_size=32)
    res = cli("export", "shapes", "--format", "onnx", "-o", tmp_path / "onnx")
    assert res.code == 0, res.output
    assert "Verified with onnxruntime" in res.stdout
    info = json.loads((tmp_path / "onnx" / "trainyard-onnx.json").read_text())
    assert info["classes"] == ["bottom", "middle", "top"] and info["verification"]["max_rel_diff"] <= 1e-3
    model = trainyard.load("shapes")
    pixels = image_batch_for(model, X, np.arange(40), augment=False).numpy()  # normalised as the json says
    logits = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx")).run(None, {"pixels": pixels})[0]
    assert logits.shape == (40, 3)
    assert np.array_equal(np.asarray(info["classes"])[logits.argmax(1)], model.predict(X[:40]))
    refused = cli("export", "shapes", "--format", "mlflow", "-o", tmp_path / "mlflow")
    assert refused.code == 2 and "--format onnx" in refused.stderr and "Traceback" not in refused.output


def test_language_model_exports_to_onnx_with_its_tokenizer(cli, workspace, tiny_model, tokenizer, tmp_path):
    from trainyard.lm.artifact import LanguageModel, register_language_model

    ws = Workspace.resolve()
    run_id = ws.store.create_run("story", kind="language-model", task="causal-lm")
    register_language_model(ws, "story", run_id, LanguageModel(tiny_model, tokenizer), {"task": "causal-lm"})
    res = cli("export", "story", "--format", "onnx", "-o", tmp_path / "onnx")
    assert res.code == 0, res.output
    out = tmp_path / "onnx"
    assert (out / "tokenizer.json").is_file() or (out / "tokenizer_config.json").is_file()
    ids = np.array([tokenizer("The owl sat on the mat.", add_special_tokens=False)["input_ids"]], dtype=np.int64)
    got = ort.InferenceSession(str(out / "model.onnx")).run(None, {"input_ids": ids})[0]
    with torch.no_grad():
        expected = tiny_model(input_ids=torch.from_numpy(ids), use_cache=False).logits.numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-3
    refused = cli("export", "story", "--format", "mlflow", "-o", tmp_path / "mlflow")
    assert refused.code == 2 and "--format onnx" in refused.stderr and "Traceback" not in refused.output
    assert not (tmp_path / "mlflow").exists()  # refused before anything was written
