"""Benchmark pages for the documentation site, generated from the measured results.

``bench/results/protocols.yaml`` groups the result files (``bench/results/*.json``) into protocols
and says, for each, what it measures, the command that produced each file and the hardware. This
script writes one Markdown page per protocol (``<name>.md``) and an ``index.md`` that lists them;
every table is read from the JSON files, so a rerun benchmark updates its page on the next build.
A result file that no protocol claims, or a claimed file that is missing, is an error: every
measurement is published and nothing else is.

Usage: ``python docs/scripts/benchmark_pages.py [--results bench/results] --out DIR``. The site's
build hook (``docs/hooks/generate.py``) calls :func:`render_pages` directly.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

INDEX = "protocols.yaml"

# Fractions printed as percentages (everything else keeps its own unit).
PERCENT_KEYS = frozenset({
    "atom_stability", "mol_stability", "validity", "uniqueness", "valid_x_unique", "novelty", "connectivity",
    "valid_connected", "neutral", "neutral_connected", "connected", "contains", "exact", "xyz2mol_valid",
    "xyz2mol_scaffold", "scaffold_intact", "edm_validity", "validity_xyz2mol", "scaffold_containment",
    "scaffold_exact", "posebusters_pass", "one_piece", "over_bonded_atoms", "under_bonded_atoms",
    "geometry_consistency", "valid_connected_consistent", "neutral_valid_connected", "edm_atom_stability",
    "edm_mol_stability", "edm_uniqueness", "atom_stability_graph",
})  # fmt: skip

LABELS = {
    "atom_stability": "atom stab.", "mol_stability": "mol. stab.", "valid_x_unique": "valid × unique",
    "valid_connected": "valid & one piece", "neutral_connected": "neutral & one piece",
    "seconds_per_molecule": "s / molecule", "seconds_per_valid": "s / valid molecule", "nfe": "NFE",
    "target_nfe": "NFE budget", "xyz2mol_valid": "xyz2mol valid", "xyz2mol_scaffold": "xyz2mol, scaffold bond orders",
    "rows": "Results", "details": "Details", "mae": "MAE",
    "alpha": "α (Bohr³)", "gap": "gap (meV)", "homo": "HOMO (meV)", "lumo": "LUMO (meV)", "mu": "μ (D)",
    "Cv": "Cv (cal/(mol K))", "mae_se": "MAE s.e.", "guide_mae": "guide MAE", "corr": "correlation", "n": "n",
    "geometry_consistency": "bonds match geometry", "valid_connected_consistent": "valid, one piece & match",
    "posebusters_pass": "PoseBusters mol", "median_delta_e": "median ΔE relax", "mean_delta_e": "mean ΔE relax",
    "edm_atom_stability": "EDM atom stab.", "edm_mol_stability": "EDM mol. stab.", "edm_validity": "EDM valid",
    "edm_uniqueness": "EDM unique", "cpu_hours": "CPU hours",
}  # fmt: skip

# Small mappings shown inside one cell (solver options, filter reasons) rather than as rows.
MAX_CELL_MAPPING = 8


class ProtocolError(ValueError):
    """The index and the result files disagree (a file unclaimed, missing or claimed twice)."""


@dataclass(frozen=True)
class Result:
    file: str
    title: str
    command: str | None
    note: str | None
    images: tuple[str, ...]


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    measures: str
    hardware: str
    results: tuple[Result, ...]


# -- the index ---------------------------------------------------------------------------------------


def load_protocols(results_dir: Path) -> list[Protocol]:
    """Read ``protocols.yaml`` and check it claims every result file exactly once."""
    raw = yaml.safe_load((results_dir / INDEX).read_text())
    hardware = raw.get("hardware", {})
    protocols = []
    for entry in raw["protocols"]:
        results = tuple(
            Result(r["file"], r.get("title") or r["file"], r.get("command"), r.get("note"), tuple(r.get("images", ())))
            for r in entry["results"]
        )  # fmt: skip
        machine = entry.get("hardware", "")
        protocols.append(Protocol(entry["name"], entry["title"], entry["measures"].strip(),
                                  hardware.get(machine, machine), results))  # fmt: skip
    _check_coverage(results_dir, protocols)
    return protocols


def _check_coverage(results_dir: Path, protocols: list[Protocol]) -> None:
    claimed = [r.file for p in protocols for r in p.results]
    twice = sorted({f for f in claimed if claimed.count(f) > 1})
    present = sorted(p.name for p in results_dir.glob("*.json"))
    unclaimed = sorted(set(present) - set(claimed))
    missing = sorted(set(claimed) - set(present))
    problems = [f"{label}: {', '.join(files)}" for label, files in
                (("claimed twice", twice), ("in no protocol", unclaimed), ("missing", missing)) if files]  # fmt: skip
    names = [p.name for p in protocols]
    if len(set(names)) != len(names):
        problems.append("protocol names repeat")
    if problems:
        raise ProtocolError(f"{results_dir / INDEX}: " + "; ".join(problems))


# -- values and tables -------------------------------------------------------------------------------


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_cell(value) -> bool:
    """Whether a value fits in one table cell: a scalar, a short list, or a small mapping of scalars."""
    if _is_scalar(value):
        return True
    if isinstance(value, list):
        return all(_is_scalar(v) or (isinstance(v, list) and all(map(_is_scalar, v))) for v in value)
    if isinstance(value, dict):
        return len(value) <= MAX_CELL_MAPPING and all(map(_is_scalar, value.values()))
    return False


def fmt(value, key: str = "") -> str:
    """One value as table text: fractions of known metrics as percentages, 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and key in PERCENT_KEYS and 0.0 <= value <= 1.0:
        return f"{100 * value:.1f} %"
    if isinstance(value, float) and key.endswith("_se") and key.removesuffix("_se") in PERCENT_KEYS:
        return f"{100 * value:.1f}"  # a standard error in percentage points
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, list) and any(isinstance(v, list) for v in value):  # e.g. (SMILES, score) pairs
        return "<br>".join(" ".join(fmt(x) for x in v) if isinstance(v, list) else fmt(v) for v in value) or "–"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v, str(k))}" for k, v in value.items()) or "–"
    return str(value)


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def records(value, key_column: str = "name") -> list[dict]:
    """Flat rows of a list of records or a mapping of named records; a record holding named
    sub-records (constrained / unconstrained, one row per property...) becomes one row each."""
    items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
    rows: list[dict] = []
    for name, record in items:
        base = {} if name is None else {key_column: name}
        if not isinstance(record, dict):
            rows.append({**base, "value": record})
            continue
        nested = {k: v for k, v in record.items() if not _is_cell(v) and isinstance(v, (dict, list)) and v}
        nested.update(_parallel_parts(record))
        cells = {k: v for k, v in record.items() if k not in nested}
        if not nested:
            rows.append({**base, **cells})
            continue
        for part, sub in nested.items():
            for row in records(sub if isinstance(sub, list) else _named(sub), "part"):
                rows.append({**base, **cells, **({"part": part} if "part" not in row else {}), **row})
    return rows


def _parallel_parts(record: dict) -> dict:
    """Small mappings of a record that share their keys (constrained / free, fp32 / bf16...) are
    parts to show as rows; a lone one (a solver's options, filter counts) stays one cell."""
    parts = {k: v for k, v in record.items() if isinstance(v, dict) and v and all(map(_is_cell, v.values()))}
    if len(parts) < 2 or len(set.intersection(*(set(v) for v in parts.values()))) < 2:
        return {}
    return parts


def _named(mapping: dict):
    """A mapping of scalars is one record; a mapping of records stays a mapping of records."""
    return [mapping] if all(map(_is_cell, mapping.values())) else mapping


def table(rows: list[dict]) -> tuple[str, dict]:
    """A Markdown table of ``rows``; columns equal in every row (of several) are returned apart."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    constant = {}
    if len(rows) > 1:
        for col in columns:
            values = [json.dumps(r.get(col), sort_keys=True) for r in rows]
            if len(set(values)) == 1:
                constant[col] = rows[0].get(col)
    shown = [c for c in columns if c not in constant and any(r.get(c) not in (None, "", [], {}) for r in rows)]
    if not shown:
        return "", constant
    lines = ["| " + " | ".join(_cell_text(label(c)) for c in shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        lines.append("| " + " | ".join(_cell_text(fmt(row.get(c), c)) for c in shown) + " |")
    return "\n".join(lines), constant


def key_values(mapping: dict) -> str:
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {_cell_text(label(str(k)))} | {_cell_text(fmt(v, str(k)))} |" for k, v in mapping.items()]
    return "\n".join(lines)


def _settings_line(mapping: dict) -> str:
    return "; ".join(f"`{k}` = {_cell_text(fmt(v, str(k)))}" for k, v in mapping.items())


def _is_setting(value) -> bool:
    """Short scalars and lists of them describe the run; long texts are shown as a list."""
    if _is_scalar(value):
        return not (isinstance(value, str) and len(value) > 120)
    return isinstance(value, list) and all(_is_scalar(v) and len(str(v)) <= 60 for v in value)


def render_data(data) -> str:
    """Every table of one result file, in the file's own order, and its settings apart."""
    if isinstance(data, list):
        data = {"rows": data}
    settings: dict = {}
    blocks: list[str] = []
    for key, value in data.items():
        if value in ([], None, ""):
            continue
        if _is_setting(value):
            settings[key] = value
        elif key == "args" and isinstance(value, dict):
            settings.update(value)
        elif value == {}:
            continue
        elif _is_scalar(value):
            blocks.append(f"**{label(key)}:** {value}")
        elif isinstance(value, dict) and all(map(_is_scalar, value.values())):
            blocks.append(f"**{label(key)}**\n\n{key_values(value)}")
        elif isinstance(value, list) and all(_is_scalar(v) or isinstance(v, list) for v in value):
            items = (_cell_text(fmt(v)).removeprefix("- ") for v in value)
            blocks.append(f"**{label(key)}**\n\n" + "\n".join(f"- {item}" for item in items))
        else:
            body, constant = table(records(value, {"rows": "row", "details": "property"}.get(key, "name")))
            text = f"**{label(key)}**\n\n{body}" if body else f"**{label(key)}**"
            if constant:
                text += "\n\nIn every row: " + _settings_line(constant)
            blocks.append(text)
    if settings:
        lines = [f"    - `{k}`: {_cell_text(fmt(v, str(k)))}" for k, v in settings.items()]
        blocks.append('??? info "Settings recorded in the file"\n\n' + "\n".join(lines))
    return "\n\n".join(blocks)


# -- pages ---------------------------------------------------------------------------------------------


def last_commit(path: Path) -> str:
    """The short hash and date of the last commit that changed ``path``, or a note when unknown."""
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h (%cs)", "--", path.name], cwd=path.parent,
                             capture_output=True, text=True, check=True, timeout=30).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "not recorded (no git checkout)"
    return f"`{out.split()[0]}` {' '.join(out.split()[1:])}" if out else "not committed yet"


def render_protocol(protocol: Protocol, results_dir: Path, commit=last_commit) -> str:
    parts = [f"# {protocol.title}", protocol.measures, f"**Hardware:** {protocol.hardware}"]
    for result in protocol.results:
        path = results_dir / result.file
        data = json.loads(path.read_text())
        recorded = data.get("command") if isinstance(data, dict) and isinstance(data.get("command"), str) else None
        head = [f"## {result.title}", f"Result file: `bench/results/{result.file}`, commit {commit(path)}."]
        if result.command:
            head.append(f"Produced by:\n\n```bash\n{result.command.strip()}\n```")
        if recorded and recorded != (result.command or "").strip():
            head.append(f"Command recorded in the file: `{recorded}`")
        if result.note:
            head.append(result.note.strip())
        head += [f"![{result.title}]({Path(img).name})" for img in result.images]
        parts.append("\n\n".join(head + [render_data(data)]))
    return "\n\n".join(parts) + "\n"


def render_index(protocols: list[Protocol]) -> str:
    lines = [
        "# Benchmarks",
        "Every figure on these pages is read from a result file in `bench/results/` when the site is "
        "built; each page names the command that produced the file, the hardware and the commit that "
        "last changed it. Percentages are shares of the molecules generated; `s / molecule` is wall time. "
        "Paths under `train_state/` and `runs/` in the commands are training outputs of the machine that "
        "ran them; the model cards say how each built-in model was trained.",
        "| protocol | what it measures | result files |",
        "|---|---|---|",
    ]
    for p in protocols:
        first = p.measures.split(". ")[0].rstrip(".") + "."
        lines.append(f"| [{p.title}]({p.name}.md) | {_cell_text(first)} | {len(p.results)} |")
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n"


def render_pages(results_dir: Path, commit=last_commit) -> dict[str, str]:
    """``{file name: Markdown}``: ``index.md`` and one page per protocol."""
    protocols = load_protocols(results_dir)
    pages = {"index.md": render_index(protocols)}
    for protocol in protocols:
        pages[f"{protocol.name}.md"] = render_protocol(protocol, results_dir, commit)
    return pages


def images(results_dir: Path) -> list[Path]:
    """The image files the pages show (copied beside them by the build)."""
    return [results_dir / img for p in load_protocols(results_dir) for r in p.results for img in r.images]


def page_titles(results_dir: Path) -> list[tuple[str, str]]:
    """(title, page file) of each protocol, in the index's order (the site's navigation)."""
    return [(p.title, f"{p.name}.md") for p in load_protocols(results_dir)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parents[2] / "bench" / "results")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the pages to")
    args = parser.parse_args(argv)
    try:
        pages = render_pages(args.results)
    except ProtocolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (args.out / name).write_text(text)
    for image in images(args.results):
        (args.out / image.name).write_bytes(image.read_bytes())
    print(f"{len(pages)} pages written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
