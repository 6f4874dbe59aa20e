"""A trainyard language model as the generator of `rag.answer` (which never imports `lm`): used by `trainyard ask
--generator` and by the server's `/v1/ask` when `trainyard serve INDEX --generator REF` names one."""

from __future__ import annotations
from trainyard.lm.artifact import load_base
from trainyard.lm.generate import Sampling, stream
from trainyard.lm.model import context_length


class LMGenerator:
    """A trainyard language model as a `rag.answer.Generator`: greedy, streamed, prompt trimmed to its context."""

    def __init__(self, lm, max_tokens: int = 200):
        self.lm, self.max_tokens = lm, max_tokens
        self.context = context_length(lm.model.config)

    def fits(self, prompt: str) -> bool:
        return len(self.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]) + self.max_tokens <= self.context

    def __call__(self, prompt: str):
        return stream(self.lm.model, self.lm.tokenizer, prompt, Sampling(max_tokens=self.max_tokens, temperature=0, stop=("\nQuestion:",)))


def lm_generator(ref: str, max_tokens: int = 200, workspace=None) -> LMGenerator:
    """A registry ref (lm@3) or a Hugging Face directory."""
    return LMGenerator(load_base(ref, workspace), max_tokens)
