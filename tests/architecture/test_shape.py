"""Small modules and functions: no module over 400 lines, no function over 80, none with cyclomatic complexity over 25
(radon's McCabe count: 1 + each branch, loop, boolean operator, except and comprehension condition)."""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "trainyard"
MAX_MODULE, MAX_FUNCTION, MAX_COMPLEXITY = 400, 80, 25


def _blocks(blocks):
    for b in blocks:
        if type(b).__name__ != "Class":
            yield b
        yield from _blocks(getattr(b, "methods", None) or [])
        yield from _blocks(getattr(b, "closures", None) or [])


def offenders(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        code = path.read_text()
        lines = len(code.splitlines())
        if lines > MAX_MODULE:
            out.append(f"{path.relative_to(root)}: {lines} lines")
        for b in _blocks(cc_visit(code)):
            length = b.endline - b.lineno + 1
            if length > MAX_FUNCTION or b.complexity > MAX_COMPLEXITY:
                out.append(f"{path.relative_to(root)}:{b.lineno} {b.name}: {length} lines, complexity {b.complexity}")
    return sorted(set(out))


def test_modules_and_functions_stay_small():
    assert PACKAGE.is_dir()
    assert offenders(PACKAGE) == []


def test_the_check_sees_a_long_branchy_function(tmp_path):
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(30))
    (tmp_path / "big.py").write_text("def f(x):\n" + branches + "\n    return -1\n" + "\n" * 400)
    found = offenders(tmp_path)
    assert any("big.py: 4" in o for o in found) and any("f: " in o and "complexity 31" in o for o in found)
