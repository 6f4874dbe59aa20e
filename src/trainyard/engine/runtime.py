"""One small object per axis of where training runs: the device and the numeric precision.

Plus seeding and the RNG states a checkpoint must carry for an exact resume
(Python's `random`, NumPy's global generator, torch on CPU and on every GPU).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from trainyard.errors import ConfigError


@dataclass(frozen=True)
class Device:
    """Where tensors live: 'cuda' when present, else 'cpu' (or what the user names)."""

    type: str

    @classmethod
    def resolve(cls, name: str = "auto") -> "Device":
        if name == "auto":
            return cls("cuda" if torch.cuda.is_available() else "cpu")
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {name} was asked for, but this machine has no CUDA GPU.", "use --device cpu or auto.")
        if name.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"'{name}' is not a device.", "use auto, cpu or cuda.")
        return cls(name)

    @property
    def torch(self) -> torch.device:
        return torch.device(self.type)

    def move(self, batch):
        """The batch (tensor, tuple, list or dict of tensors) on this device."""
        if isinstance(batch, torch.Tensor):
            return batch.to(self.type, non_blocking=True) if batch.device.type != self.torch.type else batch
        if isinstance(batch, dict):
            return {k: self.move(v) for k, v in batch.items()}
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.move(v) for v in batch)
        return batch


@dataclass(frozen=True)
class Precision:
    """fp32, or bf16 autocast.

    'auto' is bf16 where the hardware computes in bf16 natively: a GPU that
    supports it, or a CPU with AVX-512 BF16 or AMX (oneDNN then runs the matrix
    products and convolutions in bf16: 1.5-2x faster training steps for the
    CNN, MiniLM and the 10M GPT-2 on this project's machines, see
    docs/training.md). Elsewhere bf16 is emulated and slower, so 'auto' is fp32.
    Weights, optimizer state and the loss stay fp32 either way.
    """

    name: str

    @classmethod
    def resolve(cls, name: str, device: Device) -> "Precision":
        if name not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"'{name}' is not a precision.", "use auto, fp32 or bf16.")
        if name == "auto":
            return cls("bf16" if native_bf16(device) else "fp32")
        return cls(name)

    def autocast(self, device: Device):
        """The context a forward pass (and its loss) runs in. bf16 on a CPU also keeps attention in fp32 (see
        `Fp32CpuAttention`)."""
        if self.name != "bf16":
            return contextlib.nullcontext()
        cast = torch.autocast(device_type=device.torch.type, dtype=torch.bfloat16)
        if device.torch.type != "cpu":
            return cast
        stack = contextlib.ExitStack()
        stack.enter_context(cast)
        stack.enter_context(Fp32CpuAttention())
        return stack


class Fp32CpuAttention(torch.overrides.TorchFunctionMode):
    """Under bf16 autocast on a CPU, run scaled_dot_product_attention in fp32 (returning bf16, as autocast would).

    PyTorch's CPU flash-attention kernel is slower in bf16 than in fp32 (forward and backward at 8 x 5 heads x 128
    x 64, one thread: 21-23 ms in bf16, 12-13 ms in fp32 with the casts; 5-11% of a GPT-2 10M training step, see
    docs/lm.md); autocast would send it bf16, so this mode casts the inputs up and the output back down. The
    matrix products around it stay bf16. The result is also the more exact one. Every other function passes
    through untouched.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention and args and args[0].device.type == "cpu":
            up = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
            kw = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in kwargs.items()}
            with torch.autocast("cpu", enabled=False):
                return func(*up, **kw).to(torch.bfloat16)
        return func(*args, **kwargs)


def native_bf16(device: Device) -> bool:
    """Whether `device` computes bf16 in hardware (so autocast to bf16 speeds training up)."""
    if device.type.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG state, as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def torch_threads(n: int):
    """PyTorch's intra-op threads set to `n` inside the block (restored after). Small networks (the tabular MLP) run
    on one: their matrices are too small to share, and on a busy machine spinning threads made a 3 s fit 50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
