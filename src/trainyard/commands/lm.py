"""`trainyard tokenizer train`, `trainyard generate`, `trainyard merge`: the language-model commands."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, err_console, print_json, table, unescape
from trainyard.errors import ConfigError
from trainyard.lm.artifact import load_base, register_language_model
from trainyard.lm.corpus import CorpusReport, clean_documents, read_documents
from trainyard.lm.generate import Sampling, stream
from trainyard.lm.tokenizer import train_tokenizer
from trainyard.registry.workspace import Workspace

tokenizer_app = typer.Typer(help="Train byte-level BPE tokenizers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(tokenizer_app, name="tokenizer")
    app.command("generate")(generate)
    app.command("merge")(merge)


@tokenizer_app.command("train")
def tokenizer_train(
    corpus: list[Path] = typer.Argument(..., help="Text files, JSONL files or folders of them."),
    vocab_size: int = typer.Option(8000, "--vocab-size", help="Tokens in the vocabulary, special tokens included."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the tokenizer to (Hugging Face format)."),
    separator: str = typer.Option(None, "--doc-separator", help="Split text files into documents on this string (e.g. '\\n%\\n')."),
    text_field: str = typer.Option(None, "--text-field", help="JSONL field holding the text (default: 'text')."),
    min_frequency: int = typer.Option(2, "--min-frequency", help="Merge only pairs seen at least this often."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Learn a byte-level BPE vocabulary from a corpus (deduplicated and quality-filtered first)."""
    report = CorpusReport()
    docs = clean_documents(read_documents(corpus, unescape(separator), text_field), report=report)
    tok = train_tokenizer(docs, vocab_size=vocab_size, min_frequency=min_frequency)
    tok.save_pretrained(out)
    summary = {"out": str(out), "vocab_size": len(tok), **report.to_dict()}
    if as_json:
        print_json(summary)
        return
    dropped = ", ".join(f"{k} {v}" for k, v in report.dropped.items()) or "none"
    console.print(f"Tokenizer with {len(tok):,} tokens written to [bold]{out}[/] from {report.kept:,} documents "
                  f"({report.chars:,} characters; dropped: {dropped}).")


def generate(
    model: str = typer.Argument(..., help="A language model: registry ref (lm@4) or a Hugging Face model directory."),
    prompt: str = typer.Argument(..., help="Text to continue."),
    max_tokens: int = typer.Option(100, "--max-tokens", help="Most new tokens to generate."),
    temperature: float = typer.Option(0.8, "--temperature", help="0 = greedy; higher = more random."),
    top_k: int = typer.Option(0, "--top-k", help="Sample among the k most likely tokens (0 = all)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Sample among the most likely tokens holding this much probability."),
    stop: list[str] = typer.Option(None, "--stop", help="Stop when this text appears (repeatable)."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", help="Above 1 discourages tokens already in the text (1 = off; try 1.2)."),
    no_repeat_ngram: int = typer.Option(0, "--no-repeat-ngram", help="Never repeat an n-gram of tokens (0 = off; try 3)."),
    seed: int = typer.Option(None, "--seed", help="Seed for reproducible sampling."),
    chat: bool = typer.Option(False, "--chat", help="Wrap the prompt in the model's chat template (instruction-tuned models)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute every step without the KV cache (slower; for checking)."),
) -> None:
    """Generate text from a language model, streamed to the terminal as it is produced."""
    from trainyard.lm.sft import chat_prompt

    lm = load_base(model)
    s = Sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, stop=tuple(unescape(x) for x in stop or ()),
                 seed=seed, use_cache=not no_cache, repetition_penalty=repetition_penalty, no_repeat_ngram=no_repeat_ngram)
    text = chat_prompt(lm.tokenizer, prompt) if chat else prompt
    info: dict = {}
    import time

    started = time.perf_counter()
    if not chat:
        console.print(prompt, end="", style="bold", highlight=False)
    for piece in stream(lm.model, lm.tokenizer, text, s, info):
        console.print(piece, end="", highlight=False, markup=False)
    console.print()
    seconds = time.perf_counter() - started
    err_console.print(f"[dim]{info['tokens']} tokens in {seconds:.2f}s ({info['tokens'] / max(seconds, 1e-9):.1f} tokens/s), finished by {info['finish']}[/]")


def merge(
    model: str = typer.Argument(..., help="A LoRA fine-tuned model in the registry (e.g. lm@5)."),
    name: str = typer.Option(None, "--name", "-n", help="Registry name for the merged model (default: the same name)."),
) -> None:
    """Fold a LoRA adapter into its base weights and register the result as a new, plain model version."""
    lm = load_base(model)
    if not lm.is_adapter:
        raise ConfigError(f"'{model}' is not a LoRA adapter; there is nothing to merge.", "pass a model trained with --lora.")
    ws = Workspace.resolve()
    target = name or model.split("@")[0]
    run_id = ws.store.create_run(target, kind="language-model", task="merge", config={"merged": model})
    meta = {k: v for k, v in lm.meta.items() if k not in ("files", "base", "format_version", "created_at", "libraries", "version", "ref")}
    version = register_language_model(ws, target, run_id, lm.merged(), {**meta, "merged_from": model}, metrics=lm.meta.get("metrics"))
    ws.store.update_run(run_id, status="finished", model_version=version)
    console.print(f"Merged the adapter of [bold]{model}[/] into its base: registered [bold]{target}@{version}[/].")


def evaluate_lm(lm, data: Path, *, ref: str, compare: str | None = None, as_json: bool = False) -> None:
    """What `trainyard evaluate` runs for a language model: held-out perplexity, accuracy, samples, and for a
    fine-tuned model the same next to its base (before/after)."""
    from trainyard.lm.evaluate import evaluate_language_model

    compare = compare or lm.meta.get("base_model")
    base = load_base(compare) if compare else None
    report = evaluate_language_model(lm, data, compare=base)
    if as_json:
        print_json(report)
        return
    names = [ref] + ([compare] if compare else [])
    parts = [part for part in ("model", "compare") if part in report]
    rows = [[k] + [report[part].get(k) for part in parts] for k in ("perplexity", "loss", "accuracy", "unigram_perplexity", "margin", "win_rate", "chosen_logp", "rejected_logp")
            if any(k in report[part] for part in parts)]
    console.print(table(f"{data} ({report['model']['scored']})", ["metric", *names], rows))
    for s in report["samples"]:
        console.print(f"[bold]{s['prompt']!r}[/]\n  {ref}: {s['model']!r}" + (f"\n  {compare}: {s['compare']!r}" if compare else ""), highlight=False)


def evaluate_reward(rm, data: Path, *, ref: str, as_json: bool = False) -> None:
    """What `trainyard evaluate` runs for a reward model: how it ranks the chosen/rejected pairs of a JSONL file."""
    from trainyard.lm.reward import evaluate_pairs

    report = evaluate_pairs(rm, data)
    if as_json:
        print_json(report)
        return
    console.print(table(f"{ref} on {data} ({report['pairs']} pairs)", ["metric", "value"], [[k, v] for k, v in report.items() if k != "pairs"]))
