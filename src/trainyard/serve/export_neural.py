"""Export of the artifacts that are not table models: image CNNs and language models to ONNX, checked with onnxruntime.

    info = export_network(model, meta, "onnx", make_dir)   # model.onnx + trainyard-onnx.json, or a ConfigError (exit 2)

Image classifiers (`cnn`, `mobilenetv2`) become a graph from normalised pixels, float32 (N, C, H, W) at the
trained image size (`trainyard-onnx.json` holds the size, channels, mean and std to normalise with and the class
names), to one logit per class. Language models (pre-trained, SFT, DPO; a LoRA adapter is merged into its base
first) become a graph from token ids, int64 (N, T), to next-token logits (N, T, vocabulary); the tokenizer files
are written next to it. Each export is run by onnxruntime on fresh inputs and refused unless it reproduces the
PyTorch logits. Any other pairing of kind and format is refused with the formats that do fit it.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainyard.errors import ConfigError

TOLERANCE = 1e-3  # largest logit difference, relative to max(1, |logit|), that an export may show against PyTorch
FITS = {"image": ("onnx",), "language-model": ("onnx",)}


def kind_of(model, meta: dict) -> str:
    if getattr(model, "kind", None) == "language-model" or meta.get("kind") == "language-model":
        return "language-model"
    if type(model).__name__ == "ImageClassifier":
        return "image"
    return str(meta.get("kind") or type(model).__name__)


def export_network(model, meta: dict, fmt: str, make_dir) -> dict:
    """Export `model` (not a table model) as `fmt` into the folder `make_dir()` returns, or refuse (ConfigError)."""
    kind = kind_of(model, meta)
    fits = FITS.get(kind, ())
    if fmt not in fits:
        names = {"image": "an image classifier", "language-model": "a language model"}
        instead = (f"export it with --format {' or --format '.join(fits)}." if fits else
                   "this kind of artifact has no export format; use it through trainyard (serve, predict, load).")
        raise ConfigError(f"--format {fmt} does not fit {names.get(kind, f'a {kind} artifact')}.", instead)
    if kind == "image":
        return _image_onnx(model, meta, make_dir())
    return _lm_onnx(model, meta, make_dir())


def _image_onnx(est, meta: dict, out: Path) -> dict:
    import numpy as np
    import torch

    module = est.module_.eval()
    shape = (est.channels_, est.image_size_, est.image_size_)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    check = torch.randn(5, *shape, generator=torch.Generator().manual_seed(1))
    info = {"name": meta.get("name"), "version": meta.get("version"), "kind": "image-classifier", "arch": est.arch,
            "inputs": [{"name": "pixels", "type": "float32", "shape": ["N", *shape], "layout": "NCHW",
                        "normalise": "pixel / 255, then (x - mean) / std per channel", "mean": list(est.mean_), "std": list(est.std_)}],
            "outputs": ["logits"], "output_shape": ["N", len(est.classes_)], "classes": [str(c) for c in est.classes_],
            "input_summary": f"pixels, float32 (N, {shape[0]}, {shape[1]}, {shape[2]}), normalised as trainyard-onnx.json says"}
    _write_checked(module, example, check, "pixels", {0: "N"}, out, info)
    (out / "classes.json").write_text(json.dumps(np.asarray(est.classes_).tolist(), default=str))
    return info


def _lm_onnx(lm, meta: dict, out: Path) -> dict:
    import torch

    plain = lm.merged() if lm.is_adapter else lm
    model = plain.model.eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = model

        def forward(self, input_ids):
            # an explicit all-ones mask: without one transformers looks for packed sequences with torch.diff (no ONNX op)
            return self.lm(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False).logits

    vocab = model.get_input_embeddings().num_embeddings
    gen = torch.Generator().manual_seed(0)
    example, check = torch.randint(0, vocab, (2, 8), generator=gen), torch.randint(0, vocab, (3, 13), generator=gen)
    info = {"name": meta.get("name"), "version": meta.get("version"), "kind": "language-model", "task": meta.get("task"),
            "merged_from_adapter": lm.is_adapter,
            "inputs": [{"name": "input_ids", "type": "int64", "shape": ["N", "T"], "tokenizer": "tokenizer files next to model.onnx"}],
            "outputs": ["logits"], "output_shape": ["N", "T", vocab], "input_summary": "input_ids, int64 (N, T), from the tokenizer written beside it"}
    _write_checked(Logits(), example, check, "input_ids", {0: "N", 1: "T"}, out, info)
    plain.tokenizer.save_pretrained(out)
    return info


def _write_checked(module, example, check, input_name: str, dynamic: dict, out: Path, info: dict) -> None:
    """Export `module` to out/model.onnx, run onnxruntime on `check` (other shapes than the example) and refuse the
    export unless its logits match PyTorch's; writes trainyard-onnx.json with the check."""
    import numpy as np
    import onnxruntime as ort
    import torch

    path = out / "model.onnx"
    with torch.no_grad():
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=["logits"],
                          dynamic_axes={input_name: dynamic, "logits": {0: "N", **({1: "T"} if 1 in dynamic else {})}},
                          opset_version=17, dynamo=False)
        expected = module(check).float().numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {input_name: check.numpy()})[0]
    diff = float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max())
    if got.shape != expected.shape or not diff <= TOLERANCE:
        path.unlink()
        raise ConfigError(f"The ONNX graph does not reproduce the model's logits (largest difference {diff:.3g}, allowed {TOLERANCE}).",
                          "keep using the model through trainyard (serve, predict), and please report this model.")
    info["verification"] = {"runtime": f"onnxruntime {ort.__version__}", "rows": int(check.shape[0]), "input_shape": list(check.shape),
                            "max_abs_diff": float(np.abs(got - expected).max()), "max_rel_diff": diff, "share_within_tolerance": 1.0,
                            "tolerance": TOLERANCE}
    (out / "trainyard-onnx.json").write_text(json.dumps(info, indent=2))
