"""Model builder, generation (KV cache vs none, sampling, stop strings), registry round trip."""

from __future__ import annotations

import pytest
import torch

from trainyard.errors import ConfigError
from trainyard.lm.generate import Sampling, generate, pick, stream
from lmhelp import corpus_dir, tiny_model, tokenizer, one_torch_thread  # noqa: F401  (fixtures)


@pytest.mark.parametrize("arch,experts", [("gpt2", 0), ("llama", 0), ("llama", 4)])
def test_build_named_sizes(arch, experts, tokenizer):
    from trainyard.lm.model import build_model, count_parameters

    m = build_model("tiny", vocab_size=len(tokenizer), context=32, arch=arch, experts=experts)
    n = count_parameters(m)
    assert 50_000 < n < 1_000_000
    out = m(input_ids=torch.randint(0, len(tokenizer), (2, 16)))
    assert out.logits.shape == (2, 16, len(tokenizer))
    if experts:
        assert type(m).__name__.startswith("Mixtral") and m.config.num_local_experts == 4
    again = build_model("tiny", vocab_size=len(tokenizer), context=32, arch=arch, experts=experts)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values()))  # seeded


def test_unknown_size_is_a_clear_error(tokenizer):
    from trainyard.lm.model import build_model

    with pytest.raises(ConfigError, match="not a model size"):
        build_model("5G", vocab_size=300)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cache_greedy_equals_no_cache(arch, tokenizer):
    from trainyard.lm.model import build_model

    m = build_model("tiny", vocab_size=len(tokenizer), context=64, arch=arch, seed=3)
    s = Sampling(max_tokens=30, temperature=0, stop_at_eos=False)
    with_cache = generate(m, tokenizer, "The cat", s)
    without = generate(m, tokenizer, "The cat", Sampling(max_tokens=30, temperature=0, stop_at_eos=False, use_cache=False))
    assert with_cache.token_ids == without.token_ids and len(with_cache.token_ids) == 30
    assert with_cache.text == without.text and with_cache.finish == "length"


def test_sampling_is_seeded_and_filters():
    logits = torch.tensor([5.0, 4.0, 1.0, 0.0, -1.0])
    assert pick(logits, Sampling(temperature=0)) == 0
    draws = {pick(logits, Sampling(temperature=1.0, top_k=2), torch.Generator().manual_seed(i)) for i in range(200)}
    assert draws == {0, 1}
    draws = {pick(logits, Sampling(temperature=1.0, top_p=0.5), torch.Generator().manual_seed(i)) for i in range(100)}
    assert draws == {0}  # token 0 alone holds > 50% of the mass
    wide = {pick(logits, Sampling(temperature=5.0), torch.Generator().manual_seed(i)) for i in range(300)}
    assert len(wide) == 5
    with pytest.raises(ConfigError):
        Sampling(top_p=0)


def test_seeded_sampling_repeats(tiny_model, tokenizer):
    s = Sampling(max_tokens=20, temperature=0.9, top_k=50, seed=7, stop_at_eos=False)
    assert generate(tiny_model, tokenizer, "The dog", s).text == generate(tiny_model, tokenizer, "The dog", s).text


class _CharTokenizer:
    """A character-level tokenizer with a fixed script of outputs, to test stop strings and streaming."""

    eos_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


class _Scripted(torch.nn.Module):
    """Greedy decoding of this 'model' spells out `script` one character at a time."""

    def __init__(self, script: str):
        super().__init__()
        self.script = [ord(c) for c in script]
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"n_positions": 1000})()

    def forward(self, input_ids, past_key_values=None, use_cache=False):
        n = past_key_values + input_ids.shape[1] if past_key_values is not None else input_ids.shape[1]
        logits = torch.full((1, input_ids.shape[1], 200), -1e9)
        step = n - self.prompt_len
        logits[0, -1, self.script[step] if step < len(self.script) else 0] = 0
        return type("O", (), {"logits": logits, "past_key_values": n})()


def test_stop_strings_and_streaming_pieces():
    model, tok = _Scripted("Hello world. END more text"), _CharTokenizer()
    model.prompt_len = 2
    pieces = list(stream(model, tok, "Hi", Sampling(max_tokens=50, temperature=0, stop=("END", "zzz"))))
    assert "".join(pieces) == "Hello world. " and len(pieces) > 3  # streamed in pieces, stop string cut off
    info = {}
    text = "".join(stream(model, tok, "Hi", Sampling(max_tokens=5, temperature=0), info))
    assert text == "Hello" and info["finish"] == "length"
    model2 = _Scripted("abc")
    model2.prompt_len = 2
    info = {}
    assert "".join(stream(model2, tok, "Hi", Sampling(max_tokens=50, temperature=0), info)) == "abc" and info["finish"] == "eos"


def test_register_and_load_language_model(workspace, tiny_model, tokenizer):
    import trainyard
    from trainyard.lm.artifact import LanguageModel, load_base, register_language_model
    from trainyard.registry.workspace import Workspace

    ws = Workspace.resolve()
    run_id = ws.store.create_run("lm", kind="language-model", task="causal-lm")
    v = register_language_model(ws, "lm", run_id, LanguageModel(tiny_model, tokenizer), {"task": "causal-lm", "family": "gpt2"},
                                metrics={"val_perplexity": 12.5})
    assert v == 1
    loaded = trainyard.load("lm@1")
    assert isinstance(loaded, LanguageModel) and loaded.tokenizer.eos_token_id == tokenizer.eos_token_id
    s = dict(max_tokens=12, temperature=0, stop_at_eos=False)
    assert loaded.generate("The fox", **s).text == LanguageModel(tiny_model, tokenizer).generate("The fox", **s).text
    # the artifact directory is itself a Hugging Face model directory usable as --base
    row = ws.store.resolve_model("lm@1")
    local = load_base(str(ws.home / row["artifact_path"]))
    assert local.generate("The fox", **s).text == loaded.generate("The fox", **s).text
    # tampering is caught before loading
    (ws.home / row["artifact_path"] / "config.json").write_text("{}")
    from trainyard.errors import ArtifactError

    with pytest.raises(ArtifactError, match="altered"):
        trainyard.load("lm@1")


def test_repetition_penalty_and_no_repeat_ngram():
    from trainyard.lm.generate import discourage_repeats

    logits = torch.tensor([2.0, 1.0, -1.0, 0.5])
    out = discourage_repeats(logits, [0, 2], penalty=2.0)
    assert out.tolist() == [1.0, 1.0, -2.0, 0.5]  # positive divided, negative multiplied, unseen untouched
    assert pick(logits, Sampling(temperature=0, repetition_penalty=3.0), history=[0]) == 1
    # the text so far ends in "3 1"; "3 1 0" already occurred, so 0 is banned with n=3 (and only 0)
    history = [3, 1, 0, 2, 3, 1]
    banned = discourage_repeats(logits, history, ngram=3)
    assert banned[0] == float("-inf") and torch.isfinite(banned[1:]).all()
    assert pick(logits, Sampling(temperature=0, no_repeat_ngram=3), history=history) == 1
    assert pick(logits, Sampling(temperature=0, no_repeat_ngram=1), history=[0, 1, 2]) == 3  # n=1: no token twice
    with pytest.raises(ConfigError, match="Repetition"):
        Sampling(repetition_penalty=0)


def test_no_repeat_ngram_stops_a_greedy_loop(tokenizer):
    """A model that loops greedily repeats some trigram; with --no-repeat-ngram 3 no trigram of the output occurs twice."""
    from trainyard.lm.model import build_model

    m = build_model("tiny", vocab_size=len(tokenizer), context=64, seed=3)
    plain = generate(m, tokenizer, "The cat", Sampling(max_tokens=40, temperature=0, stop_at_eos=False)).token_ids

    def trigrams(ids):
        return [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]

    assert len(set(trigrams(plain))) < len(trigrams(plain))  # the untrained model loops
    prompt = tokenizer("The cat", add_special_tokens=False)["input_ids"]
    fixed = generate(m, tokenizer, "The cat", Sampling(max_tokens=40, temperature=0, stop_at_eos=False, no_repeat_ngram=3)).token_ids
    assert len(fixed) == 40 and len(set(trigrams(prompt + fixed))) == len(trigrams(prompt + fixed))
