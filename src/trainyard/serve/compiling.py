"""A served version's LightGBM trees compiled to machine code in the background (`trainyard.models.compiled`).

The server answers from the first moment with LightGBM's own single-row path; a thread compiles each LightGBM
member in a child process (10-30 s per 1,000 trees, at low priority), checks it against LightGBM and switches
that member over. `/v1/models/{name}` reports the state (`compiled_trees`); a member that fails to compile or to
match stays on LightGBM, and the reason is printed and reported.
"""

from __future__ import annotations

import sys
import threading
import time

from trainyard.models.compiled import LightGBMMember, available, compile_in_child


class TreeCompilation:
    """Compiles `members` one after another on a daemon thread; `info()` says how far it got."""

    def __init__(self, label: str, members: list[LightGBMMember]):
        self.label, self.members = label, list(members)
        self.compiled = 0
        self.state = "waiting" if self.members else "nothing to compile"
        self.errors: list[str] = []
        self.seconds: float | None = None
        self._stopped = False
        self._child = None
        self._thread = threading.Thread(target=self._run, name=f"trainyard-compile-{label}", daemon=True)

    def start(self) -> "TreeCompilation":
        if not self.members:
            return self
        if not available():
            self.state = "off (lleaves/llvmlite not importable)"
            return self
        self.state = "compiling"
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True once every member has been tried (for tests and benchmarks; the server never waits)."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Stop compiling (the server is stopping, or this version was swapped out): the child is killed."""
        self._stopped = True
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()

    def _started(self, child) -> None:
        self._child = child
        if self._stopped:
            child.kill()

    def _run(self) -> None:
        started = time.monotonic()
        for i, member in enumerate(self.members):
            if self._stopped:
                self.errors.append("stopped")
                break
            try:
                member.use(*compile_in_child(member.model_text(), on_start=self._started))
                self.compiled += 1
            except Exception as exc:  # this member keeps LightGBM's path, which is always right
                if self._stopped:
                    continue
                problem = f"member {i + 1}: {type(exc).__name__}: {exc}"
                self.errors.append(problem)
                print(f"trainyard serve: {self.label}: trees stay on LightGBM ({problem})", file=sys.stderr)
        self.seconds = round(time.monotonic() - started, 1)
        if self._stopped:
            self.state = "stopped"
        else:
            self.state = "done" if self.compiled == len(self.members) else "partly done" if self.compiled else "failed"

    def info(self) -> dict:
        return {"state": self.state, "compiled": self.compiled, "lightgbm_members": len(self.members),
                "seconds": self.seconds, "errors": self.errors}


def compile_served(label: str, fast) -> TreeCompilation:
    """Start compiling the LightGBM members of a fast path (`Model.rows_fn()`); a finished no-op without one."""
    return TreeCompilation(label, getattr(fast, "lightgbm_members", []) if fast is not None else []).start()
