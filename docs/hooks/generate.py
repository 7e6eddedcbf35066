"""MkDocs hook: the pages that are generated, not written, at every build.

- ``reference/cli.md``: the ``moldiff`` command tree (``docs/scripts/cli_reference.py``);
- ``reference/configuration.md``: every config key (``docs/scripts/config_reference.py``);
- ``benchmarks/*.md``: one page per protocol of ``bench/results/protocols.yaml``
  (``docs/scripts/benchmark_pages.py``), with the plots they show;
- ``models/*.md``: the model cards shipped beside the weights (``moldiff/models/*.md``);
- ``changelog.md``: the repository's ``CHANGELOG.md``.

The generated pages live only in the build (nothing is written into ``docs/``). The navigation's
"Model cards" and "Benchmarks" entries point at their index pages; this hook lists the pages
under them, so a new card or protocol appears without editing ``mkdocs.yml``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "docs" / "scripts"
RESULTS = ROOT / "bench" / "results"
CARDS = ROOT / "moldiff" / "models"
CHANGELOG = ROOT / "CHANGELOG.md"

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import benchmark_pages  # noqa: E402
import cli_reference  # noqa: E402
import config_reference  # noqa: E402

BENCHMARKS_INDEX = "benchmarks/index.md"
MODELS_INDEX = "models/index.md"
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def _title(markdown: str, fallback: str) -> str:
    match = re.search(r"^#\s+(.+)$", markdown, re.MULTILINE)
    return match.group(1).strip().replace("`", "") if match else fallback


def card_pages() -> dict[str, str]:
    """``{models/<card>.md: text}`` for every card shipped with the models, in name order."""
    return {f"models/{p.name}": p.read_text() for p in sorted(CARDS.glob("*.md"))}


def models_index(cards: dict[str, str]) -> str:
    import moldiff.models as models

    builtin = {**models.BUILTIN, **getattr(models, "BUILTIN_PREDICTORS", {})}
    names = {path.stem: name for name, path in builtin.items()}
    lines = [
        "# Model cards",
        "The models that ship inside the package, each with its card: what it is, how it was trained "
        "(and how to continue its training), its learning curve and its measured quality. Pick one "
        "by name: `moldiff sample --model NAME` or `load_generator(NAME)` for a generative model, "
        "`--predictor NAME` or `load_property_model(NAME)` for a property predictor.",
        "| card | built-in name |\n|---|---|",
    ]
    rows = []
    for page, text in cards.items():
        stem = Path(page).stem
        name = f"`{names[stem]}`" if stem in names else "–"
        rows.append(f"| [{_title(text, stem)}]({Path(page).name}) | {name} |")
    lines[-1] += "\n" + "\n".join(rows)
    return "\n\n".join(lines) + "\n"


def generated_pages() -> dict[str, str]:
    """Every generated page, by its path in the site."""
    pages = {
        "reference/cli.md": cli_reference.render_cli_reference(),
        "reference/configuration.md": config_reference.render_config_reference(),
        "changelog.md": CHANGELOG.read_text() if CHANGELOG.exists() else "# Changelog\n",
    }
    pages.update({f"benchmarks/{name}": text for name, text in benchmark_pages.render_pages(RESULTS).items()})
    cards = card_pages()
    pages.update(cards)
    pages[MODELS_INDEX] = models_index(cards)
    return pages


def _unlink_missing(markdown: str, page: str, known: set[str]) -> str:
    """Links from a copied file (a card, the changelog) to repository files that are not pages
    of the site become plain code text, so the build stays strict about its own links."""

    def replace(match: re.Match) -> str:
        text, target = match.groups()
        if re.match(r"^[a-z]+://|^#|^mailto:", target):
            return match.group(0)
        resolved = (Path(page).parent / target.split("#")[0]).as_posix()
        parts: list[str] = []
        for part in resolved.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return match.group(0) if "/".join(parts) in known else f"`{text.strip('`')}`"

    return LINK.sub(replace, markdown)


def _protocol_titles() -> list[tuple[str, str]]:
    try:
        return benchmark_pages.page_titles(RESULTS)
    except benchmark_pages.ProtocolError as exc:  # a result file no protocol claims, or a missing one
        raise PluginError(str(exc)) from None


def on_config(config, **kwargs):
    """Expand the "Model cards" and "Benchmarks" entries of the navigation into their pages."""
    benchmarks = [{title: f"benchmarks/{page}"} for title, page in _protocol_titles()]
    cards = [{_title(text, Path(page).stem): page} for page, text in card_pages().items()]
    expansions = {BENCHMARKS_INDEX: [BENCHMARKS_INDEX, *benchmarks], MODELS_INDEX: [MODELS_INDEX, *cards]}

    def expand(items):
        out = []
        for item in items:
            if isinstance(item, dict):
                (title, value), = item.items()
                if isinstance(value, str) and value in expansions:
                    out.append({title: expansions[value]})
                elif isinstance(value, list):
                    out.append({title: expand(value)})
                else:
                    out.append(item)
            else:
                out.append(item)
        return out

    if config["nav"]:
        config["nav"] = expand(config["nav"])
    return config


def on_files(files: Files, config, **kwargs) -> Files:
    pages = generated_pages()
    known = {f.src_uri for f in files} | set(pages)
    for path, text in pages.items():
        if path.startswith("models/") or path == "changelog.md":
            text = _unlink_missing(text, path, known)
        files.append(File.generated(config, path, content=text))
    for image in benchmark_pages.images(RESULTS):
        files.append(File.generated(config, f"benchmarks/{image.name}", abs_src_path=str(image)))
    return files
