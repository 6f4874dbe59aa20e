"""Byte-level BPE tokenizers (Hugging Face `tokenizers`), saved in the Hugging Face format.

`train_tokenizer` learns a vocabulary from documents and returns a
`PreTrainedTokenizerFast` with our special tokens and chat template, so a
saved directory loads with `AutoTokenizer.from_pretrained` like any other.
Byte-level means every string round-trips exactly: no unknown tokens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from trainyard.errors import ConfigError, NotFoundError

EOS = "<|endoftext|>"
PAD = "<|pad|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
SPECIAL_TOKENS = [EOS, PAD, USER, ASSISTANT]
# prompt -> "<|user|>\n{prompt}\n<|assistant|>\n"; the response and EOS follow (loss on those only)
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'user' %}<|user|>\n{{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}<|assistant|>\n{{ m['content'] }}<|endoftext|>"
    "{% else %}{{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(docs: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS) or vocab_size > 1 << 20:
        raise ConfigError(f"--vocab-size {vocab_size} is out of range.", "use a size between 300 and 1,000,000 (typical: 8000-50000).")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   additional_special_tokens=[USER, ASSISTANT], chat_template=CHAT_TEMPLATE)


def load_tokenizer(path: str | os.PathLike):
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise NotFoundError(f"No tokenizer in {path}.", "train one with `trainyard tokenizer train CORPUS -o DIR`, or point at a Hugging Face model directory.")
    tok = AutoTokenizer.from_pretrained(str(path))
    return ensure_special(tok)


def ensure_special(tok):
    """A tokenizer from elsewhere may lack a pad token or a chat template: fill in what we need."""
    if tok.eos_token is None:
        tok.add_special_tokens({"eos_token": EOS})
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHAT_TEMPLATE
    return tok


def token_dtype(vocab_size: int):
    import numpy as np

    return np.uint16 if vocab_size <= 1 << 16 else np.uint32
