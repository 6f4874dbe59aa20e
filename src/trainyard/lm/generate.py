"""Text generation: greedy or sampled (temperature, top-k, top-p), repetition controls, stop strings, KV cache, streaming.

    for piece in stream(model, tokenizer, "Once upon a time", Sampling(max_tokens=100, temperature=0.8)):
        print(piece, end="")

With the KV cache (the default) each new token costs one forward pass over
that token alone, reusing the keys and values of everything before it;
without it every step re-reads the whole sequence. Greedy decoding gives the
same tokens either way (tested). Text is streamed as soon as it is final:
pieces that could still become a stop string or end inside a multi-byte
character are held back until they cannot.

Two controls against loops (a small model's greedy output tends to repeat a
phrase): `repetition_penalty` (> 1) lowers the score of every token already in
the prompt or the output (a positive logit is divided by it, a negative one
multiplied, as in the CTRL paper and Hugging Face), and `no_repeat_ngram` (n > 0)
forbids a token that would repeat an n-gram already in the text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from trainyard.errors import ConfigError
from trainyard.lm.labels import printable
from trainyard.lm.model import context_length


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 100
    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = no limit
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    use_cache: bool = True
    stop_at_eos: bool = True
    repetition_penalty: float = 1.0  # 1 = off; 1.1-1.3 discourages tokens already in the text
    no_repeat_ngram: int = 0  # 0 = off; n forbids repeating any n-gram of tokens

    def __post_init__(self):
        if self.max_tokens < 0 or self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("Generation settings out of range.", "use --max-tokens >= 0, --temperature >= 0, --top-k >= 0 and 0 < --top-p <= 1.")
        if self.repetition_penalty <= 0 or self.no_repeat_ngram < 0:
            raise ConfigError("Repetition settings out of range.", "use --repetition-penalty > 0 (1 = off) and --no-repeat-ngram >= 0 (0 = off).")


@dataclass
class Generation:
    text: str
    tokens: int
    seconds: float
    finish: str  # "length", "eos" or "stop"
    token_ids: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def next_token_ids(model, prompt_ids: list[int], s: Sampling, eos_id: int | None) -> Iterator[int]:
    """Token ids one at a time (stops at EOS, which is yielded, or after max_tokens)."""
    import torch


    limit = context_length(model.config)
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(s.seed) if s.seed is not None else None
    ids = list(prompt_ids)[-max(1, limit - 1):] or ([eos_id] if eos_id is not None else [0])
    budget = min(s.max_tokens, limit - len(ids))
    cache, fresh = None, ids
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for _ in range(budget):
                if s.use_cache:
                    out = model(input_ids=torch.tensor([fresh], device=device), past_key_values=cache, use_cache=True)
                    cache = out.past_key_values
                else:
                    out = model(input_ids=torch.tensor([ids], device=device), use_cache=False)
                token = pick(out.logits[0, -1].float().cpu(), s, gen, ids)
                ids.append(token)
                fresh = [token]
                yield token
                if s.stop_at_eos and token == eos_id:
                    return
    finally:
        model.train(was_training)


def pick(logits, s: Sampling, gen=None, history: list[int] | None = None) -> int:
    """The next token from one position's logits; `history` (prompt and output so far) feeds the repetition controls."""
    import torch

    if history and (s.repetition_penalty != 1 or s.no_repeat_ngram):
        logits = discourage_repeats(logits, history, s.repetition_penalty, s.no_repeat_ngram)
    if s.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / s.temperature
    if s.top_k:
        kth = torch.topk(logits, min(s.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, -1) >= s.top_p  # keep the smallest set reaching top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))


def discourage_repeats(logits, history: list[int], penalty: float = 1.0, ngram: int = 0):
    """`logits` with the tokens of `history` penalised, and the tokens that would repeat an n-gram of it banned."""
    import torch

    logits = logits.clone()
    if penalty != 1:
        seen = torch.tensor(sorted(set(history)), dtype=torch.long)
        scores = logits[seen]
        logits[seen] = torch.where(scores > 0, scores / penalty, scores * penalty)
    if ngram and len(history) >= ngram:
        prefix = tuple(history[len(history) - ngram + 1:]) if ngram > 1 else ()
        banned = {history[i + ngram - 1] for i in range(len(history) - ngram + 1) if tuple(history[i:i + ngram - 1]) == prefix}
        if banned and len(banned) < logits.numel():  # never ban everything
            logits[torch.tensor(sorted(banned), dtype=torch.long)] = float("-inf")
    return logits


def stream(model, tokenizer, prompt: str, s: Sampling = Sampling(), info: dict | None = None) -> Iterator[str]:
    """Pieces of generated text as they become final, without control characters (byte tokens such as '\\x05' that a
    small model emits); `info` (if given) receives tokens, finish and token_ids."""
    for piece in _pieces(model, tokenizer, prompt, s, info):
        shown = printable(piece)
        if shown:
            yield shown


def _pieces(model, tokenizer, prompt: str, s: Sampling, info: dict | None) -> Iterator[str]:
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    hold = max((len(x) for x in s.stop), default=1) - 1
    out_ids: list[int] = []
    sent = 0
    finish = "length"
    info = info if info is not None else {}
    for token in next_token_ids(model, prompt_ids, s, eos):
        if token == eos and s.stop_at_eos:
            finish = "eos"
            break
        out_ids.append(token)
        text = tokenizer.decode(out_ids, skip_special_tokens=False)
        cut = min((i for i in (text.find(x, max(0, sent - len(x))) for x in s.stop) if i >= 0), default=-1)
        if cut >= 0:
            if cut > sent:
                yield text[sent:cut]
            sent, finish = cut, "stop"
            break
        safe = len(text) - hold
        while safe > sent and text[safe - 1] == "\ufffd":  # an unfinished multi-byte character
            safe -= 1
        if safe > sent:
            yield text[sent:safe]
            sent = safe
    if finish != "stop":
        text = tokenizer.decode(out_ids, skip_special_tokens=False)
        if len(text) > sent:
            yield text[sent:]
    info.update(tokens=len(out_ids) + (finish == "eos"), finish=finish, token_ids=out_ids)


def generate(model, tokenizer, prompt: str, s: Sampling = Sampling()) -> Generation:
    info: dict = {}
    started = time.perf_counter()
    text = "".join(stream(model, tokenizer, prompt, s, info))
    return Generation(text, info["tokens"], time.perf_counter() - started, info["finish"], info["token_ids"])
