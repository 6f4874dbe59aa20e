"""What a language-model run is scored by, and text that is safe to show.

    task_metric("preference", "dpo")  # ("win_rate", "val_win_rate")
    printable("The cat\x05 sat")                              # "The cat sat"

Each task has its own metric: perplexity for pre-training and SFT, the win rate of chosen over rejected
answers for DPO, the mean reward for RLOO, the pairwise accuracy for a reward model. `trainyard runs`,
`trainyard models` and the dashboard show that name and value, never a perplexity a task does not have.
"""

from __future__ import annotations

import unicodedata

# task (or task/method) -> (the metric's name, the key of the held-out evaluation that holds it)
METRICS = {
    "causal-lm": ("perplexity", "val_perplexity"),
    "sft": ("perplexity", "val_perplexity"),
    "preference/dpo": ("win_rate", "val_win_rate"),
    "preference/rloo": ("reward", "val_reward"),
    "reward": ("accuracy", "val_accuracy"),
}


def task_metric(task: str, method: str = "dpo") -> tuple[str, str]:
    """(metric name, evaluation key) of a task (and a preference run's method); anything else: the validation loss."""
    key = f"{task}/{method}" if task == "preference" else task
    return METRICS.get(key, ("loss", "val_loss"))


def printable(text: str) -> str:
    """`text` without control characters (tokenizer artefacts such as '\\x05'); newlines and tabs are kept."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
