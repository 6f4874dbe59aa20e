"""Decoder-only transformers from Hugging Face configs, at named sizes.

    model = build_model("10M", vocab_size=8000, context=256, arch="llama")

`arch` is "gpt2" (learned positions, GELU MLP) or "llama" (rotary positions,
RMSNorm, SwiGLU); `experts > 0` swaps the feed-forward layers for a
mixture of experts (the Mixtral architecture: a router picks the top 2 of
`experts` SwiGLU MLPs per token, with its load-balancing loss). Sizes name
the rough parameter count with an 8,000-token vocabulary, embeddings included
(input and output embeddings are tied).
"""

from __future__ import annotations

from trainyard.errors import ConfigError, suggest

# name -> (layers, width, heads)
SIZES = {
    "tiny": (2, 64, 2),
    "1M": (2, 96, 4),
    "3M": (4, 160, 4),
    "10M": (6, 320, 5),
    "30M": (8, 512, 8),
    "60M": (12, 640, 10),
}
ARCHS = ("gpt2", "llama")


def model_config(size: str = "10M", *, vocab_size: int, context: int = 256, arch: str = "gpt2", experts: int = 0,
                 eos_id: int | None = None, pad_id: int | None = None, dropout: float = 0.0):
    from transformers import GPT2Config, LlamaConfig, MixtralConfig

    if size not in SIZES:
        raise ConfigError(f"'{size}' is not a model size.", suggest(size, SIZES))
    if arch not in ARCHS:
        raise ConfigError(f"'{arch}' is not an architecture.", suggest(arch, ARCHS))
    layers, width, heads = SIZES[size]
    ids = {"bos_token_id": eos_id, "eos_token_id": eos_id, "pad_token_id": pad_id}
    if experts:
        if experts < 2:
            raise ConfigError("--experts needs at least 2 experts.", "use --experts 4 (or 0 for a dense model).")
        return MixtralConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=_swiglu_width(width) // 2,
                             num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                             max_position_embeddings=context, num_local_experts=experts, num_experts_per_tok=2,
                             output_router_logits=True, router_aux_loss_coef=0.01, tie_word_embeddings=True,
                             attention_dropout=dropout, **ids)
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_positions=context, n_embd=width, n_layer=layers, n_head=heads,
                          resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, tie_word_embeddings=True,
                          activation_function="gelu_pytorch_tanh", **ids)  # GPT-2's tanh GELU as one fused kernel, not 8 ops
    return LlamaConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=_swiglu_width(width), num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=context,
                       tie_word_embeddings=True, attention_dropout=dropout, **ids)


def build_model(size: str = "10M", *, vocab_size: int, context: int = 256, arch: str = "gpt2", experts: int = 0,
                eos_id: int | None = None, pad_id: int | None = None, seed: int = 0, dropout: float = 0.0):
    """A freshly initialised causal LM (seeded, so the same arguments give the same weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    cfg = model_config(size, vocab_size=vocab_size, context=context, arch=arch, experts=experts, eos_id=eos_id, pad_id=pad_id, dropout=dropout)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg)


def context_length(config) -> int:
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    return 1024


def count_parameters(model) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel()
    return total


def _swiglu_width(width: int) -> int:
    return int(8 * width / 3 + 31) // 32 * 32
