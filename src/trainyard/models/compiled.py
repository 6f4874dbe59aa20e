"""LightGBM members compiled to native code, for the few-rows path of a server.

LightGBM walks its trees node by node through generic arrays: ~0.15 ms per row for a 1,000-tree model, which
was half of what a served request cost. lleaves (on LLVM, through llvmlite) turns the trees into straight-line
machine code that gives the same numbers in a fifth of the time. Compiling takes 10-60 s per 1,000 trees, so
it is never done inline:

- `compile_object(model_text)` runs in a child process (`python -m trainyard.models.compiled`, model text on
  stdin, machine code on stdout; see `compile_in_child`) so that building the LLVM IR, which is Python and holds
  the GIL for seconds, does not stall the server's event loop;
- `CompiledForest` loads that machine code from memory (never from a file anyone else could swap) for this
  machine's CPU, and is checked against the booster it came from on rows built from the trees' own split
  values (`probe_rows`, also made in the child: walking 1,000 dumped trees takes the GIL for a while) before
  it is used;
- `LightGBMMember` is a LightGBM member's rows path (LightGBM's single-row C API) which a compiled forest
  replaces, once checked, by one reference assignment (`use`).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np

from trainyard.models.fastpath import SINGLE_ROW_LIMIT, SingleRowBooster
from trainyard.tasks import Task

ENTRY = "forest_root"  # lleaves' entry point: void forest_root(double *rows, double *out, int start, int end)
TOLERANCE = 1e-9
ZERO_BAND = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (1e-35f)
_DOUBLE_P = ctypes.POINTER(ctypes.c_double)
_ENTRY_TYPE = ctypes.CFUNCTYPE(None, _DOUBLE_P, _DOUBLE_P, ctypes.c_int32, ctypes.c_int32)
_llvm_lock = threading.Lock()


def available() -> bool:
    """Whether lleaves and llvmlite import (they are dependencies; a broken install serves with LightGBM)."""
    try:
        import lleaves  # noqa: F401
        import llvmlite.binding  # noqa: F401
    except Exception:
        return False
    return True


def _target_machine():
    """This machine's CPU, with the relocation and code model lleaves' code needs for large forests."""
    import llvmlite.binding as llvm

    llvm.initialize()
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot tell on some CPUs
        features = ""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=features, reloc="pic", codemodel="large")


def compile_object(model_text: str) -> bytes:
    """LightGBM model text -> machine code for this CPU (slow: run it in a child, `compile_in_child`)."""
    import llvmlite.binding as llvm
    from lleaves.compiler import compile_to_module

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.txt")
        with open(path, "w") as f:
            f.write(model_text)
        module = compile_to_module(path, raw_score=False, froot_func_name=ENTRY, use_fp64=True)
    engine = llvm.create_mcjit_compiler(module, _target_machine())
    emitted: list[bytes] = []
    engine.set_object_cache(notify_func=lambda _module, buffer: emitted.append(bytes(buffer)))
    engine.finalize_object()
    if not emitted:
        raise RuntimeError("LLVM emitted no machine code")
    return emitted[0]


def compile_in_child(model_text: str, timeout: float = 900.0, on_start=None) -> tuple[bytes, np.ndarray]:
    """`compile_object` and `probe_rows` in a child process at low priority: (machine code, probe rows). On
    failure a RuntimeError with the child's last line of stderr. `on_start(process)` gets the child (to kill it
    when the server stops first)."""
    child = subprocess.Popen([sys.executable, "-m", "trainyard.models.compiled"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if on_start is not None:
        on_start(child)
    try:
        out, err = child.communicate(model_text.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise RuntimeError(f"compiling took over {timeout:g} s") from None
    if child.returncode != 0 or len(out) < 24:
        lines = err.decode(errors="replace").strip().splitlines()
        if child.returncode < 0:  # killed: the server stopping (Ctrl-C reaches the whole process group), or out of memory
            raise RuntimeError(f"the compiler was stopped by signal {-child.returncode}")
        raise RuntimeError(lines[-1] if lines else f"the compiler exited with {child.returncode}")
    return _unpack(out)


def _pack(object_code: bytes, probe: np.ndarray) -> bytes:
    header = np.array([len(object_code), probe.shape[0], probe.shape[1]], dtype="<i8").tobytes()
    return header + object_code + np.ascontiguousarray(probe, dtype="<f8").tobytes()


def _unpack(data: bytes) -> tuple[bytes, np.ndarray]:
    size, rows, cols = (int(v) for v in np.frombuffer(data[:24], dtype="<i8"))
    if size <= 0 or len(data) != 24 + size + 8 * rows * cols:
        raise RuntimeError("the compiler's output is cut short")
    probe = np.frombuffer(data[24 + size:], dtype="<f8").reshape(rows, cols)
    return data[24:24 + size], probe


def _child_main() -> None:
    import lightgbm

    os.nice(10)  # below the server that started it (set here: preexec_fn is unsafe in a threaded parent)
    text = sys.stdin.read()
    probe = probe_rows(lightgbm.Booster(model_str=text))
    sys.stdout.buffer.write(_pack(compile_object(text), probe))


class CompiledForest:
    """Machine code from `compile_object`, loaded in this process: rows (float64, n x features) -> output."""

    def __init__(self, object_code: bytes, n_features: int, n_out: int):
        import llvmlite.binding as llvm

        with _llvm_lock:
            engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
            engine.set_object_cache(getbuffer_func=lambda _module: object_code)  # from memory, not from a file
            engine.finalize_object()
            address = engine.get_function_address(ENTRY)
        if not address:
            raise RuntimeError(f"the machine code has no {ENTRY}")
        self._engine = engine  # keeps the code mapped
        self._fn = _ENTRY_TYPE(address)
        self.n_features, self.n_out = n_features, n_out

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        out = np.empty((len(X), self.n_out), dtype=np.float64)
        self._fn(X.ctypes.data_as(_DOUBLE_P), out.ctypes.data_as(_DOUBLE_P), 0, len(X))
        return out[:, 0] if self.n_out == 1 else out


def probe_rows(booster, n_rows: int = 256, seed: int = 0) -> np.ndarray:
    """Rows that take many branches of `booster`: each value is one of the feature's split thresholds nudged to
    either side, a category code used in a split, or missing. Used to check a compiled forest against LightGBM."""
    model = booster.dump_model()
    values: dict[int, set] = {}

    def walk(node):
        if "split_feature" not in node:
            return
        bucket = values.setdefault(node["split_feature"], set())
        if node.get("decision_type") == "==":
            bucket.update(float(c) for c in str(node["threshold"]).split("||"))
        else:
            t = float(node["threshold"])
            bucket.update((t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), t - 1.0, t + 1.0))
        walk(node["left_child"])
        walk(node["right_child"])

    for tree in model["tree_info"]:
        walk(tree["tree_structure"])
    rng = np.random.default_rng(seed)
    X = np.zeros((n_rows, booster.num_feature()))
    for j in range(X.shape[1]):
        # LightGBM counts |x| <= 1e-35 as zero where a split says "zero is missing", lleaves compares it as the
        # number it is: a known difference for values no table holds, left out of the probe (zero itself is in)
        pool = np.array(sorted(v for v in values.get(j, {0.0}) if not 0 < abs(v) <= ZERO_BAND) + [0.0, np.nan])
        X[:, j] = rng.choice(pool, size=n_rows)
    return X


class LightGBMMember:
    """One LightGBM member's rows path: LightGBM's single-row C API (or its batch predict) until a checked
    compiled forest is handed to `use`."""

    def __init__(self, booster, task: Task):
        self.booster = booster
        self.best = booster.best_iteration if booster.best_iteration > 0 else None
        self.n_out = booster.num_model_per_iteration()
        self.two_columns = task.is_classification and self.n_out == 1
        self.single = SingleRowBooster.create(booster, booster.num_feature(), self.n_out, self.best)
        self.compiled: CompiledForest | None = None

    def model_text(self) -> str:
        return self.booster.model_to_string(num_iteration=self.best)

    def lightgbm(self, X: np.ndarray) -> np.ndarray:
        if self.single is not None and len(X) <= SINGLE_ROW_LIMIT:
            out = np.array([self.single.predict(v) for v in X])
            return out[:, 0] if self.n_out == 1 else out
        return self.booster.predict(X, num_iteration=self.best, num_threads=1)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        forest = self.compiled
        out = forest.predict(X) if forest is not None else self.lightgbm(X)
        return two_columns(out) if self.two_columns else out

    def use(self, object_code: bytes, probe: np.ndarray) -> float:
        """Load `object_code`, compare it with LightGBM on `probe` (`probe_rows`), and switch to it when they
        agree; the largest difference seen (a ValueError above `TOLERANCE`, and LightGBM stays)."""
        forest = CompiledForest(object_code, self.booster.num_feature(), self.n_out)
        expected = self.booster.predict(probe, num_iteration=self.best, num_threads=1)
        diff = float(np.abs(forest.predict(probe) - expected).max())  # NaN (a wrong forest) fails too
        if not diff <= TOLERANCE:
            raise ValueError(f"compiled trees differ from LightGBM by {diff:.3g} on probe rows")
        self.compiled = forest
        return diff


def two_columns(p: np.ndarray) -> np.ndarray:
    out = np.empty((len(p), 2))  # what np.column_stack([1 - p, p]) gives, in a third of its time for one row
    out[:, 1] = p
    np.subtract(1.0, p, out=out[:, 0])
    return out


if __name__ == "__main__":  # the child of `compile_in_child`
    _child_main()
