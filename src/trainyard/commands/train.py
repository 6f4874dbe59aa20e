"""`trainyard train`: a table in, a registered model out, with live progress."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, fmt, parse_duration, print_json, process_started, split_list, table


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    data: Path = typer.Argument(None, help="Table to learn from: .csv, .tsv, .parquet or .jsonl (language models: a corpus file or folder, or JSONL; --task rl: none)."),
    target: str = typer.Option(None, "--target", "-t", help="Column to predict (tables and texts)."),
    time_limit: str = typer.Option(None, "--time-limit", help="Time for the whole run: seconds or 30m, 1h (preset default: fast 30, balanced 60, best 300)."),
    name: str = typer.Option(None, "--name", "-n", help="Registry name for the model (default: the file name)."),
    preset: str = typer.Option("balanced", "--preset", "-p", help="fast, balanced or best."),
    task: str = typer.Option(None, "--task", help="binary, multiclass, regression (default: inferred), image-classification, text-classification, text-regression (default for texts: from the target); language models: causal-lm, sft, preference, reward."),
    metric: str = typer.Option(None, "--metric", help="Metric to optimise (default: roc_auc, accuracy or rmse)."),
    include: list[str] = typer.Option(None, "--include", help="Only these model families (comma-separated or repeated)."),
    exclude: list[str] = typer.Option(None, "--exclude", help="Leave out these model families."),
    ignore: list[str] = typer.Option(None, "--ignore", help="Columns to leave out."),
    categorical: list[str] = typer.Option(None, "--categorical", help="Columns to treat as categories."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, models)."),
    max_trials: int = typer.Option(None, "--max-trials", help="Stop after this many trials."),
    test_size: float = typer.Option(None, "--test-size", help="Share of rows held out for the final test (default 0.2)."),
    group_col: str = typer.Option(None, "--group-col", help="Keep each group of this column in one split."),
    time_col: str = typer.Option(None, "--time-col", help="Split by time on this column (train on the past)."),
    force: bool = typer.Option(False, "--force", help="Train even when the audit finds blocking problems."),
    sensitive: list[str] = typer.Option(None, "--sensitive", "-s", help="Sensitive columns: the audit reports their groups and the test evaluation reports fairness by them (comma-separated or repeated)."),
    class_weight: str = typer.Option(None, "--class-weight", help="auto (balanced when the smallest class is under 10%), balanced or none."),
    calibrate: str = typer.Option(None, "--calibrate", help="auto, sigmoid, isotonic or temperature: calibrate probabilities on the validation rows."),
    threshold_metric: str = typer.Option(None, "--threshold-metric", help="Binary: tune the decision threshold on validation rows for this metric (default f1)."),
    cost_fp: float = typer.Option(None, "--cost-fp", help="Binary: cost of a false positive (tune the threshold for the lowest cost)."),
    cost_fn: float = typer.Option(None, "--cost-fn", help="Binary: cost of a false negative."),
    learning_curve: bool = typer.Option(False, "--learning-curve", help="Add learning curves (score vs training rows) to the report."),
    resume: str = typer.Option(None, "--resume", help="Continue an interrupted run (RUN_ID or 'last') from its recorded trials."),
    max_predict_ms_per_row: float = typer.Option(None, "--max-predict-ms-per-row", help="Prefer models (and ensembles) predicting faster than this."),
    memory_limit_mb: float = typer.Option(None, "--memory-limit-mb", help="Skip a family whose estimated memory is above this (default: 80% of free memory)."),
    weight_col: str = typer.Option(None, "--weight-col", help="Column of sample weights (used in training and validation scores)."),
    bag_folds: int = typer.Option(None, "--bag-folds", help="k-fold bagging when the data is small enough (0: off; preset default)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    text_col: str = typer.Option(None, "--text-col", help="\\[neural] Column holding the text (text classification or regression; default: the one free-text column when --model minilm or a text --task is given)."),
    model: str = typer.Option(None, "--model", help="\\[neural] cnn or mobilenetv2 (images); minilm or a Hugging Face model folder (text)."),
    lora: bool = typer.Option(None, "--lora/--full", help="\\[neural] Fine-tune with LoRA adapters instead of all weights."),
    lora_r: int = typer.Option(None, "--lora-r", help="\\[neural] LoRA rank (default 8; language models 16)."),
    epochs: int = typer.Option(None, "--epochs", help="\\[neural] Passes over the training data."),
    batch_size: int = typer.Option(None, "--batch-size", help="\\[neural] Examples per batch."),
    lr: float = typer.Option(None, "--lr", help="\\[neural] Peak learning rate."),
    device: str = typer.Option(None, "--device", help="\\[neural] auto (CUDA when present), cpu or cuda."),
    precision: str = typer.Option(None, "--precision", help="\\[neural] auto, fp32 or bf16 (autocast)."),
    image_size: int = typer.Option(None, "--image-size", help="\\[neural] Resize images to this side (pixels)."),
    augment: bool = typer.Option(None, "--augment/--no-augment", help="\\[neural] Random flips and crops of training images."),
    width: int = typer.Option(None, "--width", help="\\[neural] Channels of the CNN's first stage."),
    max_length: int = typer.Option(None, "--max-length", help="\\[neural] Tokens kept per text."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="\\[neural] Checkpoint every N optimizer steps (default 200)."),
    base: str = typer.Option(None, "--base", help="\\[lm] Model to fine-tune (sft, preference): registry ref (lm@2) or a Hugging Face model directory."),
    size: str = typer.Option(None, "--size", help="\\[lm] Model size to pre-train: tiny, 1M, 3M, 10M, 30M or 60M (default 10M)."),
    arch: str = typer.Option(None, "--arch", help="\\[lm] gpt2 or llama (default gpt2)."),
    experts: int = typer.Option(None, "--experts", help="\\[lm] Mixture of this many experts in every feed-forward layer (0: dense)."),
    context: int = typer.Option(None, "--context", help="\\[lm] Tokens per training window (default 256)."),
    tokenizer: str = typer.Option(None, "--tokenizer", help="\\[lm] Tokenizer directory (default: the base's, or one trained on the corpus)."),
    vocab_size: int = typer.Option(None, "--vocab-size", help="\\[lm] Vocabulary of the tokenizer trained on the corpus (default 8000)."),
    max_steps: int = typer.Option(None, "--max-steps", help="\\[lm] Optimizer steps (default: --epochs passes, or what --time-limit allows)."),
    warmup: float = typer.Option(None, "--warmup", help="\\[lm] Warm-up: a fraction of the steps, or steps when >= 1 (default 0.05)."),
    eval_every: int = typer.Option(None, "--eval-every", help="\\[lm] Evaluate on held-out data every N steps (default: 10 times over --max-steps, else each epoch)."),
    method: str = typer.Option(None, "--method", help="\\[lm] Preference method: dpo (default) or rloo (policy gradient against --reward-model)."),
    beta: float = typer.Option(None, "--beta", help="\\[lm] DPO temperature; for rloo the weight of the KL penalty (default 0.1)."),
    reward_model: str = typer.Option(None, "--reward-model", help="\\[lm] rloo: reward model scoring the samples (trained with --task reward)."),
    rollouts: int = typer.Option(None, "--rollouts", help="\\[lm] rloo: completions sampled per prompt (default 4)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="\\[lm] rloo: most tokens per sampled completion (default 48)."),
    separator: str = typer.Option(None, "--doc-separator", help="\\[lm] Split corpus files into documents on this string (e.g. '\\n%\\n')."),
    text_field: str = typer.Option(None, "--text-field", help="\\[lm] JSONL field holding the text (default: 'text')."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="\\[lm] Share of documents / pairs held out (default 0.05)."),
    env: str = typer.Option(None, "--env", help="\\[rl] Gymnasium environment id (CartPole-v1) or module:Class."),
    algo: str = typer.Option(None, "--algo", help="\\[rl] ppo (default) or dqn."),
    timesteps: str = typer.Option(None, "--timesteps", help="\\[rl] Environment steps: 100000, 100k, 1M (default: per environment)."),
    hparam: list[str] = typer.Option(None, "--hparam", help="\\[rl] Override a hyperparameter: KEY=VALUE (repeatable; e.g. lr=1e-3, hidden=128,128)."),
) -> None:
    """Train models on a table, pick the best on validation data, test it once and register it.

    Neural tasks: `--task image-classification` on an image folder (one sub-folder per class), idx or .npz files;
    `--text-col COL` (text classification) on a CSV/JSONL; options marked \\[neural] apply to them.

    Language models: `--task causal-lm` pre-trains on a corpus, `--task sft --base lm@2` instruction-tunes on prompt/response
    JSONL, `--task preference --base lm@3` runs DPO on prompt/chosen/rejected JSONL, `--task reward --base lm@3` trains a
    reward model on the same pairs and `--task preference --method rloo --reward-model rm@1` a policy against it; options marked \\[lm] and the
    \\[neural] ones apply (--lora, --epochs, --batch-size, --lr, ...)."""
    from trainyard.lm.train import TASKS as LM_TASKS
    from trainyard.training.deep import is_deep

    time_limit = parse_duration(time_limit)
    if task == "rl":  # reinforcement learning: trainyard.rl (commands/rl.py)
        from trainyard.commands.rl import train_rl

        train_rl(env=env, algo=algo, timesteps=timesteps, time_limit=time_limit, seed=seed, name=name, hparams=hparam, lr=lr,
                 batch_size=batch_size, checkpoint_every=checkpoint_every, max_trials=max_trials, as_json=as_json)
        return
    if data is None:
        raise typer.BadParameter("DATA is required (except with --task rl).", param_hint="DATA")
    if task in LM_TASKS:
        from trainyard.commands.lm import train_language

        train_language(data, as_json=as_json, task=task, name=name, base=base, tokenizer=tokenizer, vocab_size=vocab_size, size=size,
                       arch=arch, experts=experts, context=context, batch_size=batch_size, epochs=epochs, max_steps=max_steps,
                       time_limit=time_limit, lr=lr, warmup=warmup, eval_every=eval_every, checkpoint_every=checkpoint_every,
                       lora=lora, lora_r=lora_r, method=method, beta=beta, reward_model=reward_model, rollouts=rollouts,
                       max_new_tokens=max_new_tokens, seed=seed, val_fraction=val_fraction, separator=separator,
                       text_field=text_field, device=device, loop={"precision": precision} if precision else None,
                       clock_started=process_started())
        return

    if is_deep(task, text_col, model):
        from trainyard.commands.deep import train_neural

        train_neural(data, as_json=as_json, task=task, target=target, text_col=text_col, model=model, name=name, seed=seed,
                     test_size=test_size, lora=lora, lora_r=lora_r, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                     precision=precision, image_size=image_size, augment=augment, width=width, max_length=max_length,
                     loop={"checkpoint_every": checkpoint_every} if checkpoint_every else None)
        return
    train_table(data, target, as_json=as_json, time_limit=time_limit, name=name, preset=preset, resume=resume,
                task=task, metric=metric, include=split_list(include), exclude=split_list(exclude),
                ignore=split_list(ignore), categorical=split_list(categorical), seed=seed, max_trials=max_trials,
                test_size=test_size, group_col=group_col, time_col=time_col, force=force,
                sensitive=split_list(sensitive) or None, class_weight=class_weight,
                calibrate=calibrate, threshold_metric=threshold_metric, cost_fp=cost_fp, cost_fn=cost_fn, learning_curve=learning_curve or None,
                max_predict_ms_per_row=max_predict_ms_per_row, memory_limit_mb=memory_limit_mb, weight_col=weight_col,
                bag_folds=bag_folds)


def train_table(data, target, *, as_json: bool = False, time_limit: float | None = None, **settings) -> None:
    """The table search (or its resume, with `resume=RUN_ID`) with a live display, then the leaderboard and test metrics."""
    from trainyard import api

    with _Live(enabled=not as_json, time_limit=time_limit) as live:
        result = api.train(data, target, time_limit=time_limit, progress=live.update, clock_started=process_started(), **settings)
    if as_json:
        print_json({
            "run_id": result.run_id, "name": result.name, "version": result.version, "task": result.task,
            "metric": result.metric, "test": result.metrics, "baseline": result.baseline, "split": result.split,
            "leaderboard": result.leaderboard.reset_index(names="rank").to_dict(orient="records"),
            "evaluation": result.evaluation.to_dict() if result.evaluation else None, "model_card": str(result.card_dir) if result.card_dir else None,
        })
        return
    board = result.leaderboard
    shown = [c for c in board.columns if c not in ("params", "message")]
    console.print(table(f"Leaderboard (validation {result.metric})", ["rank", *shown, "note"],
                        [[i, *[row[c] for c in shown], _note(row)] for i, row in board.head(25).iterrows()]))
    if len(board) > 25:
        console.print(f"... {len(board)} trials in all; `trainyard runs` and the workspace database keep every one.")
    from trainyard.commands.evaluate import metrics_table, print_findings

    console.print(metrics_table(f"Held-out test set ({result.split['test']} rows, scored once)", result.evaluation["metrics"]))
    print_findings(result.evaluation.data)
    console.print(f"Model card: {result.card_dir / 'model_card.html'}", highlight=False)
    console.print(f"Registered [bold]{result.name}@{result.version}[/] ({result.model.family}), run {result.run_id}. "
                  f"Test {result.metric} = {fmt(result.test_score)}.")


def _note(row) -> str:
    if row["message"]:
        return row["message"][:80]
    params = row.get("params") or ""
    return params if len(params) <= 80 else params[:77] + "..."


class _Live:
    """Rich progress: a spinner with the best score so far, and one line per finished trial as it lands."""

    def __init__(self, enabled: bool, time_limit: float | None = None):
        self.enabled = enabled
        self.time_limit = time_limit
        self.best = None
        self.count = 0
        self.metric = ""
        self.greater = True

    def __enter__(self):
        if self.enabled:
            from rich.progress import Progress

            self.progress = Progress(*self.columns(), console=console, transient=True)
            self.progress.__enter__()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def columns(self) -> list:
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        return [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]

    def update(self, kind: str, info: dict) -> None:
        if not self.enabled:
            return
        if kind == "stage":
            self.progress.update(self.task, description=info["message"])
        elif kind == "run":
            from trainyard.evaluation.metrics import METRICS

            self.metric = info["metric"]
            self.greater = METRICS[self.metric].greater_is_better if self.metric in METRICS else True
            resumed = f", resuming from {info['resumed']} recorded trials" if info.get("resumed") is not None else ""
            console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} task, optimising {info['metric']}{resumed}; families {', '.join(info['families'])}")
            console.print(f"  {'trial':>5}  {'family':<14} {'val ' + self.metric:>14} {'fit s':>7} {'ms/row':>8} {'MB':>7}  note", style="bold", highlight=False)
        elif kind == "plan":
            budget = "no time limit" if info["time_limit"] is None else f"{info['time_limit']:.0f}s"
            trials = f", at most {info['max_trials']} trials" if info.get("max_trials") else ""
            bag = f", {info['bag_folds']}-fold bagging" if info.get("bag_folds") else ", scored on the validation split"
            console.print(f"  search budget {budget}{trials}{bag}", highlight=False)
        elif kind == "audit":
            report = info["report"]
            s = report.summary()
            console.print(f"Audit: [bold red]{s['blocking']} blocking[/], [yellow]{s['warning']} warning[/], {s['info']} info"
                          f" ({report.timings.get('total', 0):.1f}s)")
            from rich.markup import escape

            for f in [f for f in report.findings if f.severity != "info"][:8]:
                style = "bold red" if f.severity == "blocking" else "yellow"
                console.print(f"  [{style}]{f.severity}[/] " + escape((f"[{f.column}] " if f.column else "") + f.what), highlight=False)
        elif kind == "trial":
            t = info["trial"]
            self.count += 1
            better = t.status == "ok" and (self.best is None or (t.val_score > self.best if self.greater else t.val_score < self.best))
            if better:
                self.best = t.val_score
            note = "best so far" if better else ""
            if t.status != "ok":
                note = f"[yellow]{t.status}[/]: {(t.message or '').splitlines()[0] if t.message else ''}"
            elif t.family == "ensemble":
                note = (t.message or "") + ("; best so far" if better else "")
            console.print(f"  {t.number:>5}  {t.family:<14} {fmt(t.val_score):>14} {fmt(t.fit_seconds, 1):>7} {fmt(t.predict_ms_per_row, 3):>8} "
                          f"{fmt(t.memory_mb, 0):>7}  {note}", highlight=False)
            self.progress.update(self.task, description=f"searching: {self.count} trials, best {self.metric} {fmt(self.best)}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)
        return False
