"""The benchmark pages of the documentation: one page per protocol of bench/results/protocols.yaml,
every result file on exactly one page, and a build that fails when the index and the files disagree."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
RESULTS = ROOT / "bench" / "results"
SCRIPT = ROOT / "docs" / "scripts" / "benchmark_pages.py"


def _module():
    spec = importlib.util.spec_from_file_location("benchmark_pages", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def results(tmp_path) -> Path:
    """A copy of the shipped results and their index."""
    copy = tmp_path / "results"
    copy.mkdir()
    for path in [*RESULTS.glob("*.json"), *RESULTS.glob("*.png"), RESULTS / "protocols.yaml"]:
        shutil.copy(path, copy / path.name)
    return copy


def _run(results: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--results", str(results), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_every_protocol_gets_a_page_and_every_result_file_one_section(results, tmp_path):
    out = tmp_path / "pages"
    done = _run(results, out)
    assert done.returncode == 0, done.stderr
    protocols = yaml.safe_load((results / "protocols.yaml").read_text())["protocols"]
    index = (out / "index.md").read_text()
    for protocol in protocols:
        page = out / f"{protocol['name']}.md"
        assert page.exists(), protocol["name"]
        assert f"({protocol['name']}.md)" in index
        assert page.read_text().startswith(f"# {protocol['title']}\n")
    pages = {p.name: p.read_text() for p in out.glob("*.md")}
    for result in sorted(p.name for p in results.glob("*.json")):
        holders = [name for name, text in pages.items() if f"`bench/results/{result}`" in text]
        assert len(holders) == 1, f"{result} is on {holders}"
    for image in (img for p in protocols for r in p["results"] for img in r.get("images", [])):
        assert (out / image).exists()


def test_tables_come_from_the_result_file(results, tmp_path):
    data = json.loads((results / "builtin_eval.json").read_text())
    data["summary"]["mol_stability"] = 0.4321
    (results / "builtin_eval.json").write_text(json.dumps(data))
    out = tmp_path / "pages"
    assert _run(results, out).returncode == 0
    assert "| mol. stab. | 43.2 % |" in (out / "builtin-models.md").read_text()


def test_a_result_file_no_protocol_claims_is_an_error(results, tmp_path):
    (results / "new_benchmark.json").write_text('{"rows": []}')
    done = _run(results, tmp_path / "pages")
    assert done.returncode == 2
    assert "in no protocol: new_benchmark.json" in done.stderr
    assert not (tmp_path / "pages").exists()


def test_a_claimed_file_that_is_missing_is_an_error(results, tmp_path):
    (results / "views.json").unlink()
    done = _run(results, tmp_path / "pages")
    assert done.returncode == 2 and "missing: views.json" in done.stderr


def test_named_sub_records_become_rows_and_fractions_percentages():
    pages = _module()
    rows = pages.records([{"scaffold": "c1ccccc1", "constrained": {"validity": 0.86, "n": 100},
                           "free": {"validity": 0.72, "n": 100}}])  # fmt: skip
    assert rows == [{"scaffold": "c1ccccc1", "part": "constrained", "validity": 0.86, "n": 100},
                    {"scaffold": "c1ccccc1", "part": "free", "validity": 0.72, "n": 100}]  # fmt: skip
    text, constant = pages.table(rows)
    assert constant == {"scaffold": "c1ccccc1", "n": 100}
    assert "| constrained | 86.0 % |" in text and "scaffold" not in text.splitlines()[0]
    assert pages.fmt(1234.5678) == "1235" and pages.fmt(12345.6) == "12,346" and pages.fmt(None) == "–"
