"""Data-parallel fine-tuning of a tiny language model on the real two-node loopback cluster (tests/rayhelp.py): SFT
(LoRA through PEFT), DPO and a reward model; two ranks, gloo on CPU, each on its slice of every global batch."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from lmhelp import ANIMALS, ONE_THREAD_ENV, PLACES, documents

pytestmark = pytest.mark.slow

# The SFT loss is a mean over response tokens, and the examples' responses differ in length, so the ranks' shares of a
# batch are their shares of its response tokens (engine/parallel.py's weighted_by), not of its rows. With SGD in fp32
# the two runs agree within these tolerances (measured once: the same held-out loss to the last digit, LoRA weights 3.0e-8
# apart); weighting by rows instead misses them by three orders of magnitude (measured once: loss 1.0e-3, weights 1.2e-3).
LOSS_TOLERANCE = 1e-6
WEIGHT_TOLERANCE = 1e-6


@pytest.fixture
def sft_base(tmp_path):
    """A tiny GPT-2 base in a Hugging Face directory (its tokenizer trained on a small corpus), and prompt/response
    pairs whose responses are 5 to 20 words long."""
    from trainyard.lm.model import build_model
    from trainyard.lm.tokenizer import train_tokenizer

    tok = train_tokenizer(documents(60, seed=3), vocab_size=300)
    model = build_model("tiny", vocab_size=len(tok), context=64, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, seed=1)
    model.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    rng = random.Random(5)
    rows = [{"prompt": f"Where is the {rng.choice(ANIMALS)}?",
             "response": " ".join(f"It is on the {rng.choice(PLACES)}." for _ in range(rng.randint(1, 4)))} for _ in range(60)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    return data, tmp_path / "base"


def _adapter(name: str) -> dict:
    import trainyard

    return {k: v.detach().float().numpy().copy() for k, v in trainyard.load(name).model.state_dict().items() if "lora_" in k}


def test_two_workers_fine_tune_lora_to_where_one_process_does(workspace, ray_cluster, sft_base):
    import torch

    from trainyard import api
    from trainyard.registry.workspace import Workspace

    data, base = sft_base
    torch.set_num_threads(1)
    common = dict(task="sft", base=str(base), lora=True, lora_r=4, context=64, batch_size=8, epochs=1, seed=2, samples=1, lr=0.5,
                  val_fraction=0.1, loop={"optimizer": "sgd", "precision": "fp32"})
    one = api.train(data, name="one", **common)
    two = api.train(data, name="two", cluster=ray_cluster.address, workers=2, **common)
    ws = Workspace.resolve(workspace)
    assert one.steps == two.steps == 7
    assert abs(one.metrics["val_loss"] - two.metrics["val_loss"]) < LOSS_TOLERANCE, (one.metrics["val_loss"], two.metrics["val_loss"])
    a1, a2 = _adapter("one"), _adapter("two")
    assert len(a1) > 0 and a1.keys() == a2.keys()
    gap = max(float(np.abs(a1[k] - a2[k]).max()) for k in a1)
    assert gap < WEIGHT_TOLERANCE, gap
    assert max(float(np.abs(v).max()) for k, v in a2.items() if "lora_B" in k) > 1e-3  # the adapter trained (LoRA's B starts at 0)
    curve = [m["value"] for m in ws.store.metric_history(two.run_id, "train_loss")]
    assert len(curve) == two.steps and curve[-1] < curve[0]  # one curve (rank 0's), and it went down
    assert any("data-parallel on 2 workers" in e["message"] for e in ws.store.events(two.run_id))


def test_resume_continues_a_killed_data_parallel_fine_tuning_on_another_number_of_workers(cli, workspace, ray_cluster, sft_base, tmp_path):
    """The driver killed mid-run: `trainyard resume --workers 1` continues from rank 0's last checkpoint and registers
    the adapter, every step of every epoch trained once."""
    from rayhelp import kill_after_checkpoint
    from trainyard.registry.workspace import Workspace

    data, base = sft_base
    args = ["train", str(data), "--task", "sft", "--base", str(base), "--lora", "--context", "64", "--batch-size", "8", "--epochs", "3",
            "--checkpoint-every", "4", "--cluster", ray_cluster.address, "--workers", "2", "--json"]
    run_id = kill_after_checkpoint(args, workspace, tmp_path, "step-000000[1-9]*", env=ONE_THREAD_ENV)
    resumed = cli("resume", run_id, "--workers", "1", "--json", timeout=300, env=ONE_THREAD_ENV)
    assert resumed.code == 0, resumed.output
    out = json.loads(resumed.stdout)
    ws = Workspace.resolve(workspace)
    events = [e["message"] for e in ws.store.events(run_id)]
    assert any("resumed from step" in e for e in events)
    assert any("data-parallel on 2 workers" in e for e in events) and any("data-parallel on 1 worker;" in e for e in events)
    steps = [m["step"] for m in ws.store.metric_history(run_id, "train_loss")]
    assert out["version"] == 1 and max(steps) == out["steps"] == 3 * 8  # 3 epochs of 57 examples in batches of 8, across the kill


@pytest.mark.parametrize("task, extra", [("preference", {"lora": True, "lora_r": 4}), ("reward", {})])
def test_two_workers_train_dpo_and_reward_models_to_where_one_process_does(workspace, ray_cluster, sft_base, task, extra):
    """DPO (LoRA) and a reward model (every weight): their losses are means over pairs, so each rank's share of a batch
    is its share of the pairs; 2 ranks end where one process does (the same tolerances as SFT; measured once: DPO's
    held-out losses 6.0e-8 apart and the adapters 7.5e-9; the reward models' losses 1.5e-8 and weights 7.5e-9)."""
    import torch

    import trainyard
    from trainyard import api

    data, base = sft_base
    rng = random.Random(7)
    rows = [{"prompt": f"Where is the {a}?", "chosen": f"The {a} is on the {rng.choice(PLACES)}." * rng.randint(1, 3),
             "rejected": f"No {a}."} for a in (rng.choice(ANIMALS) for _ in range(60))]
    pairs = data.with_name("prefs.jsonl")
    pairs.write_text("\n".join(json.dumps(r) for r in rows))
    torch.set_num_threads(1)
    common = dict(task=task, base=str(base), context=64, batch_size=8, epochs=1, seed=2, samples=1, lr=0.05, val_fraction=0.1,
                  loop={"optimizer": "sgd", "precision": "fp32"}, **extra)
    one = api.train(pairs, name=f"{task}-one", **common)
    two = api.train(pairs, name=f"{task}-two", cluster=ray_cluster.address, workers=2, **common)
    assert one.steps == two.steps == 7
    w1, w2 = ({k: v.detach().float().numpy() for k, v in trainyard.load(n).model.state_dict().items() if task == "reward" or "lora_" in k}
              for n in (f"{task}-one", f"{task}-two"))
    gap = max(float(np.abs(w1[k] - w2[k]).max()) for k in w1)
    assert abs(one.metrics["val_loss"] - two.metrics["val_loss"]) < LOSS_TOLERANCE, (one.metrics["val_loss"], two.metrics["val_loss"])
    assert gap < WEIGHT_TOLERANCE, gap
    assert two.metrics["val_loss"] < math.log(2) - 0.05  # it learned: log 2 is the loss of telling chosen from rejected by chance
