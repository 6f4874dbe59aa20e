"""The unseen suite (benchmarks/automl/suite_unseen.py) stays unseen: nothing under src/ reads the file or names its
tables, and none of its tables is a development table or one already used in tests/ or benchmarks/."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE_FILE = ROOT / "benchmarks" / "automl" / "suite_unseen.py"


def _suite():
    spec = importlib.util.spec_from_file_location("suite_unseen", SUITE_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("suite_unseen", module)  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module.SUITE


def _names(suite) -> set[str]:
    """The suite's own names for its tables and the R datasets they come from."""
    return set(suite) | {t.item for t in suite.values()}


def _mentions(text: str, names: set[str]) -> list[str]:
    return sorted(n for n in names if re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", text))


def test_no_module_under_src_reads_the_suite_or_names_its_tables():
    names = _names(_suite()) | {"suite_unseen"}
    found = {}
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".toml", ".txt", ".md", ".yaml", ".yml", ".cfg"}:
            hits = _mentions(path.read_text(errors="replace"), names)
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def test_the_check_catches_a_mention(tmp_path):
    """The scan above would see a module that named a suite table (so its passing means something)."""
    suite = _suite()
    name = next(iter(suite))
    assert _mentions(f'DATA = "{name}"\n', _names(suite)) == [name]
    assert _mentions(f"load('{suite[name].item}')", _names(suite)) == [suite[name].item]
    assert _mentions(f"x_{name}_y = 1", _names(suite)) == []


def test_no_suite_table_is_a_development_table_or_used_elsewhere():
    suite = _suite()
    fetch = (ROOT / "scripts" / "fetch_data.py").read_text()
    development = set(re.findall(r'rdataset\("([^"]+)", "([^"]+)"\)', fetch))
    assert development, "scripts/fetch_data.py's tables were not found"
    assert {(t.package, t.item) for t in suite.values()} & development == set()
    items = {t.item for t in suite.values()}
    others = [p for d in ("tests", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py")
              if p.resolve() not in {SUITE_FILE.resolve(), Path(__file__).resolve()}]
    used = {str(p.relative_to(ROOT)): _mentions(p.read_text(errors="replace"), items) for p in others}
    assert {k: v for k, v in used.items() if v} == {}


def test_the_suite_has_the_mix_the_issue_asks_for():
    suite = _suite()
    tasks = [t.task for t in suite.values()]
    assert len(suite) >= 16
    assert all(tasks.count(kind) >= 5 for kind in ("regression", "binary", "multiclass"))
    assert all(t.target not in t.drop for t in suite.values())
