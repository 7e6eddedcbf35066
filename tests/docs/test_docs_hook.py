"""The build hook of the documentation site: the pages it generates from the repository (model
cards, changelog, benchmark pages, references) and the links of copied files it neutralises."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")  # the hook runs inside mkdocs (pip install -e ".[docs]")

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("docs_generate_hook", ROOT / "docs" / "hooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_card_the_changelog_and_every_protocol_become_pages(hook):
    pages = hook.generated_pages()
    for card in (ROOT / "moldiff" / "models").glob("*.md"):
        assert pages[f"models/{card.name}"] == card.read_text()
        assert f"({card.name})" in pages["models/index.md"]
    assert pages["changelog.md"] == (ROOT / "CHANGELOG.md").read_text()
    for _, page in hook.benchmark_pages.page_titles(hook.RESULTS):
        assert f"benchmarks/{page}" in pages
    assert {"reference/cli.md", "reference/configuration.md", "benchmarks/index.md"} <= set(pages)


def test_navigation_lists_the_cards_and_protocols_under_their_entries(hook):
    config = {"nav": [{"Home": "index.md"}, {"Model cards": "models/index.md"},
                      {"More": [{"Benchmarks": "benchmarks/index.md"}]}]}  # fmt: skip
    nav = hook.on_config(config)["nav"]
    cards = nav[1]["Model cards"]
    assert cards[0] == "models/index.md" and len(cards) == 1 + len(list((ROOT / "moldiff" / "models").glob("*.md")))
    benchmarks = nav[2]["More"][0]["Benchmarks"]
    assert benchmarks[0] == "benchmarks/index.md"
    assert [list(b.values())[0] for b in benchmarks[1:]] == [
        f"benchmarks/{page}" for _, page in hook.benchmark_pages.page_titles(hook.RESULTS)
    ]


def test_links_to_files_outside_the_site_become_code(hook):
    text = "[card](qm9.md), [script](../../bench/x.py), [web](https://example.org), [here](#top)"
    out = hook._unlink_missing(text, "models/drugs.md", {"models/qm9.md"})
    assert out == "[card](qm9.md), `script`, [web](https://example.org), [here](#top)"
