"""Memory savers for language-model training: gradient checkpointing, and 8-bit / 4-bit bases for LoRA (QLoRA).

    check_quantize(settings)              # before the run starts: refuses what cannot work here (exit 2)
    base = quantized(base, settings)      # the LoRA base reloaded in 8 or 4 bits (CUDA + bitsandbytes)
    use_gradient_checkpointing(model)     # activations recomputed in the backward pass instead of kept

Gradient checkpointing trades about a third more compute for activations that no longer grow with the depth
of the model. Quantized bases need bitsandbytes' CUDA kernels: on a machine without a CUDA GPU, or without
bitsandbytes, `--quantize` is refused before anything is loaded, with what would make it work.
"""

from __future__ import annotations

import importlib.util

from trainyard.errors import ConfigError

QUANTIZE = ("8bit", "4bit")


def check_quantize(s) -> None:
    """Refuse --quantize where it cannot work: without LoRA, without a base, off CUDA, or without bitsandbytes."""
    if s.quantize is None:
        return
    if s.quantize not in QUANTIZE:
        raise ConfigError(f"--quantize {s.quantize} is not a precision trainyard can load.", "use --quantize 8bit or --quantize 4bit.")
    if not (s.lora and s.base):
        raise ConfigError("--quantize loads a base model in 8 or 4 bits to train LoRA adapters on it (QLoRA).",
                          "add --base MODEL --lora, or leave --quantize out.")
    import torch

    if s.device == "cpu" or not torch.cuda.is_available():
        raise ConfigError(f"--quantize {s.quantize} needs a CUDA GPU (bitsandbytes' 8-bit and 4-bit kernels run on CUDA); "
                          "this machine has none.", "leave --quantize out: LoRA on the full-precision base trains on the CPU.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(f"--quantize {s.quantize} needs the bitsandbytes package, which is not installed.",
                          "pip install bitsandbytes (on a machine with CUDA), or leave --quantize out.")


def quantized(base, s):
    """`base` (a LanguageModel loaded from a directory) reloaded with its linear layers in 8 or 4 bits, ready for LoRA."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if base.directory is None:
        raise ConfigError("--quantize needs a base saved as a full model; this base is a LoRA adapter.",
                          "merge it first (trainyard.load(ref).merged()), save it, and pass that directory as --base.")
    bits = BitsAndBytesConfig(load_in_8bit=True) if s.quantize == "8bit" else BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(str(base.directory), quantization_config=bits, device_map={"": 0})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=s.gradient_checkpointing)
    return type(base)(model, base.tokenizer, base.meta, base.directory)


def use_gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass (Hugging Face models, LoRA-wrapped or not)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(inner, "supports_gradient_checkpointing", False):
        raise ConfigError(f"{type(inner).__name__} does not support gradient checkpointing.", "leave --gradient-checkpointing out.")
    kwargs = {"use_reentrant": False, "context_fn": _recompute_like_forward}
    if hasattr(inner, "activation_checkpointing_enable"):  # transformers >= 5.x's name for it
        inner.activation_checkpointing_enable(kwargs)
    else:
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _recompute_like_forward():
    """(forward context, recompute context) for torch's checkpoint: under bf16 autocast on a CPU the training loop keeps
    attention in fp32 (engine.runtime.Fp32CpuAttention, a function mode that the backward pass would not see), so the
    recomputation enters it too and recomputes exactly what the forward pass saved."""
    import contextlib

    import torch

    from trainyard.engine.runtime import Fp32CpuAttention  # PyTorch, loaded when a model trains

    recompute = Fp32CpuAttention() if torch.is_autocast_enabled("cpu") else contextlib.nullcontext()
    return contextlib.nullcontext(), recompute
