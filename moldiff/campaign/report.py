"""The campaign report: one self-contained HTML file, fully useful offline.

Everything is inline: plots are PNG (matplotlib) in ``data:`` URIs, molecule drawings are SVG
(RDKit), styles are one ``<style>`` block; no script and no external resource. It is built only
from the files of the campaign directory, so ``moldiff report DIR`` regenerates it at any time.

Sections: summary (with what steered the generation: targets, guides, a scaffold), provenance
(model, seed, guidance, scaffold, versions, MLflow run), set metrics, descriptor
distributions against the reference set, the top molecules (drawings and scores), why molecules
were filtered, and the resolved campaign file.
"""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path

import numpy as np

from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_text

DISTRIBUTIONS = (("qed", "QED"), ("sa", "SA score"), ("logp", "logP"), ("mw", "molecular weight (Da)"))
METRIC_LABELS = {
    "n": "generated", "n_valid": "valid (xyz2mol)", "validity": "validity (xyz2mol)",
    "edm_validity": "validity (EDM bond rule)", "mol_stability": "molecule stability (EDM)",
    "connected": "valid and connected", "neutral": "valid and neutral",
    "neutral_connected": "valid, neutral and connected", "n_unique": "unique valid", "uniqueness": "uniqueness",
    "n_novel": "novel unique", "novelty": "novelty", "internal_diversity": "internal diversity (IntDiv)",
    "n_scaffolds": "distinct scaffolds", "scaffold_diversity": "scaffolds / unique", "snn": "SNN (to reference)",
    "fcd": "FCD (to reference)", "posebusters_pass": "PoseBusters pass", "n_kept": "kept",
    "kept_fraction": "kept / generated", "mean_desirability_kept": "mean desirability of kept",
    "mean_qed": "mean QED (valid)", "mean_sa": "mean SA (valid)", "mean_logp": "mean logP (valid)",
    "mean_mw": "mean MW (valid)", "mean_tpsa": "mean TPSA (valid)",
    "scaffold_containment": "contain the scaffold (graph)", "scaffold_exact": "contain the scaffold (bond orders, EDM rule)",
    "scaffold_intact": "contain the scaffold (bond orders, as read by xyz2mol)",
}  # fmt: skip
FRACTIONS = {"validity", "edm_validity", "mol_stability", "connected", "neutral", "neutral_connected", "uniqueness",
             "novelty", "posebusters_pass", "kept_fraction", "scaffold_containment", "scaffold_exact",
             "scaffold_intact"}  # fmt: skip
TOP_COLUMNS = ("rank", "index", "seed", "smiles", "desirability", "qed", "sa", "logp", "mw", "tpsa",
               "nn_similarity", "brenk")  # fmt: skip

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
     color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;
     font-size:.92em} th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.summary{font-size:1.1em;background:#f7f9fc;border:1px solid #dde5f0;padding:.8em 1em;border-radius:6px}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em} .grid svg{max-width:100%;height:auto}
.small{color:#666;font-size:.85em} code{font-size:.9em} img{max-width:100%;height:auto}
"""


def write_report(folder: str | Path) -> Path:
    """(Re)build ``folder/report.html`` from the campaign's files; returns its path."""
    folder = Path(folder)
    html = render(folder)
    path = folder / "report.html"
    atomic_write_text(path, html)
    return path


def render(folder: Path) -> str:
    """The report of the campaign in ``folder`` as HTML text."""
    import pandas as pd

    needed = ["molecules.csv", "metrics.json", "run.json", "campaign.yaml"]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise MoldiffError(f"{folder} is not a finished campaign directory (missing {', '.join(missing)})")
    frame = pd.read_csv(folder / "molecules.csv", keep_default_na=False, na_values={c: [""] for c in _NUMERIC})
    metrics = json.loads((folder / "metrics.json").read_text())
    run = json.loads((folder / "run.json").read_text())
    config_text = (folder / "campaign.yaml").read_text()
    ref_path = folder / "reference_scores.csv"
    reference = pd.read_csv(ref_path) if ref_path.is_file() else None
    name = run.get("config", {}).get("name", folder.name)
    # molecules carrying a graph model's own bonds are read as written, not by xyz2mol
    read_by = "own bonds" if "bond_source" in frame and (frame["bond_source"] == "model").all() else "xyz2mol"
    top_n = int(run.get("config", {}).get("top_n", 24))
    parts = [
        f"<h1>Campaign {escape(name)}</h1>",
        _summary(frame, run),
        "<h2>Provenance</h2>", _provenance(run),
        "<h2>Set metrics</h2>", _metrics_table(metrics, read_by),
        "<h2>Distributions</h2>", _distributions(frame, reference, run),
        "<h2>Top molecules</h2>", _top(frame, top_n, _scaffold_smiles(run)),
        "<h2>Why molecules were filtered</h2>", _breakdown(frame, read_by),
        "<h2>Campaign file (resolved)</h2>", f"<pre>{escape(config_text)}</pre>",
    ]  # fmt: skip
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>moldiff campaign {escape(name)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")  # fmt: skip


_NUMERIC = ("qed", "sa", "logp", "mw", "tpsa", "nn_similarity", "desirability", "rank", "n_fragments", "charged_atoms",
            "hbd", "hba", "rotatable_bonds", "heavy_atoms", "rings", "lipinski_violations", "n_pains", "n_brenk")  # fmt: skip


def _summary(frame, run: dict) -> str:
    n = len(frame)
    valid = int(frame["valid"].astype(str).str.lower().eq("true").sum())
    kept = int((frame["status"] == "kept").sum())
    cfg = run.get("config", {})
    sampling = cfg.get("sampling", {})
    steered = [f"{label} {text}" for label, text in _steering(run.get("guidance") or {})]
    if "contains_scaffold" in frame:
        found = int(frame["contains_scaffold"].astype(str).str.lower().eq("true").sum())
        steered.append(f"scaffold found in {found} molecules ({_pct(found, n)})")
    return (f"<p class=\"summary\"><b>{n}</b> molecules generated, <b>{valid}</b> valid ({_pct(valid, n)}), "
            f"<b>{kept}</b> kept ({_pct(kept, n)}) by model <code>{escape(str(cfg.get('model')))}</code> "
            f"with solver {escape(str(sampling.get('solver')))}, {escape(str(sampling.get('steps')))} steps, "
            f"seed {escape(str(cfg.get('seed')))}."
            + (f" Steered by {escape('; '.join(steered))}." if steered else "")
            + f" Finished {escape(str(run.get('time', '')))}.</p>")  # fmt: skip


def _steering(record: dict) -> list[tuple[str, str]]:
    """(what, how) of each kind of steering in a run record's ``guidance``."""
    from moldiff.guidance.units import PROPERTIES

    def value(name: str, v: float) -> str:  # in the property's canonical unit
        unit = PROPERTIES[name].unit if name in PROPERTIES else ""
        return f"{v:g} {unit}".strip()

    def goal(g: dict) -> str:
        return value(g["name"], g["target"]) if g["target"] is not None else ("max" if g["direction"] > 0 else "min")

    out = []
    if record.get("targets"):
        shown = ", ".join(f"{k} = {value(k, v)}" for k, v in record["targets"].items())
        out.append(("targets", f"{shown} (classifier-free, w = {record.get('guidance_scale')})"))
    if record.get("guides"):
        shown = ", ".join(f"{g['name']} → {goal(g)} (weight {g['weight']:g})" for g in record["guides"])
        out.append(("guide", f"{shown} (scale {record.get('guide_scale')}, predictor {record.get('predictor')})"))
    if record.get("scaffold"):
        s = record["scaffold"]
        source = "" if s["source"] == s["smiles"] else f" from {s['source']}"
        out.append(("scaffold", f"{s['smiles']}{source} ({s['atoms']} atoms kept, jump {s['jump']}, "
                                f"resample {s['resamples']})"))  # fmt: skip
    if record.get("steer"):
        st = record["steer"]
        rewards = st["rewards"] if isinstance(st["rewards"], str) else ", ".join(
            f"{r['name']} → {goal(r)}" for r in st["rewards"])  # fmt: skip
        bonus = ", a bonus for the scaffold intact" if st.get("scaffold_bonus") else ""
        out.append(("steering with", f"{st['particles']} particles per molecule, the {st['select']} kept (reward "
                                     f"{rewards}, molecules read by {st['reader']}{bonus})"))  # fmt: skip
    return out


def _provenance(run: dict) -> str:
    reference = run.get("reference") or {}
    rows = [
        ("model", run.get("model")), ("model sha256 (first 16)", run.get("model_sha256")),
        ("model training step", run.get("model_step")), ("campaign seed", run.get("seed")),
        ("config fingerprint", run.get("fingerprint")), ("command", run.get("command")),
        *_steering(run.get("guidance") or {}),
        ("reference set", f"{reference.get('name')} ({reference.get('size')} unique molecules)"),
        ("generation / scoring time", f"{run.get('seconds_generate')} s / {run.get('seconds_score')} s"),
        ("devices", ", ".join(run.get("devices") or [])), ("network arithmetic", run.get("precision", "fp32")),
        ("MLflow run id", run.get("mlflow_run_id") or "not tracked"), ("MLflow tracking URI", run.get("tracking_uri")),
    ]  # fmt: skip
    rows += [(f"version: {k}", v) for k, v in (run.get("versions") or {}).items()]
    return _table(["", "value"], [[escape(str(k)), escape(str(v))] for k, v in rows])


def _metrics_table(metrics: dict, read_by: str = "xyz2mol") -> str:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            continue
        label = METRIC_LABELS.get(key, key).replace("xyz2mol", read_by)
        if value is None:
            shown = "–"
        elif key in FRACTIONS:
            shown = f"{100 * value:.1f} %"
        elif isinstance(value, float):
            shown = f"{value:.3f}"
        else:
            shown = str(value)
        rows.append([escape(label), escape(shown)])
    return _table(["metric", "value"], rows, numeric={1})


def _distributions(frame, reference, run: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    valid = frame[frame["valid"].astype(str).str.lower() == "true"]
    kept = frame[frame["status"] == "kept"]
    ref_name = (run.get("reference") or {}).get("name", "reference")
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4))
    axes = axes.ravel()
    for ax, (col, label) in zip(axes, DISTRIBUTIONS):
        series = [("generated (valid)", valid, "#4c72b0"), ("kept", kept, "#dd8452")]
        if reference is not None:
            series.insert(0, (ref_name, reference, "#999999"))
        values = [np.asarray(_numeric(d[col]), dtype=float) for _, d, _ in series]
        finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
        if len(finite) == 0:
            ax.set_title(f"{label}: no values")
            continue
        bins = np.linspace(finite.min(), finite.max() if finite.max() > finite.min() else finite.min() + 1, 31)
        for (title, _, colour), v in zip(series, values):
            v = v[np.isfinite(v)]
            if len(v):
                ax.hist(v, bins=bins, density=True, histtype="stepfilled" if title == ref_name else "step",
                        alpha=0.35 if title == ref_name else 1.0, color=colour, label=f"{title} ({len(v)})", lw=1.5)
        ax.set_xlabel(label)
        ax.set_yticks([])
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    note = (f"<p class=small>Densities of valid generated molecules, of the kept ones, and of up to 2,000 molecules "
            f"of the reference set ({escape(ref_name)}).</p>")  # fmt: skip
    return f"<img alt=\"QED, SA, logP and MW distributions\" src=\"data:image/png;base64,{data}\">{note}"


def _numeric(values):
    import pandas as pd

    return pd.to_numeric(values, errors="coerce")


def _scaffold_smiles(run: dict) -> str | None:
    scaffold = (run.get("guidance") or {}).get("scaffold")
    return scaffold.get("smiles") if scaffold else None


def _top(frame, top_n: int, scaffold: str | None) -> str:
    kept = frame[frame["status"] == "kept"].copy()
    kept["rank"] = _numeric(kept["rank"])
    kept = kept.sort_values("rank").head(top_n)
    if not len(kept):
        return "<p>No molecule passed the filters.</p>"
    from moldiff.chem.draw import grid_from_smiles

    legends = [f"#{int(r.rank)}  D={_num(r.desirability)}  QED={_num(r.qed)}  SA={_num(r.sa)}"
               for r in kept.itertuples()]  # fmt: skip
    svg = grid_from_smiles(list(kept["smiles"]), legends=legends, n_cols=4, size=(260, 200), highlight=scaffold)
    columns = [c for c in TOP_COLUMNS if c in kept.columns]
    rows = [[escape(_num(row[c]) if c not in ("smiles", "brenk") else str(row[c])) for c in columns]
            for _, row in kept.iterrows()]  # fmt: skip
    note = (f"<p>The scaffold <code>{escape(scaffold)}</code> is highlighted where a molecule keeps it with its bond "
            "orders.</p>" if scaffold else "")  # fmt: skip
    return f"{note}<div class=grid>{svg}</div>" + _table(list(columns), rows)


def _breakdown(frame, read_by: str = "xyz2mol") -> str:
    n = len(frame)
    filtered = frame[frame["status"] != "kept"]
    counts = filtered["reason_kind"].value_counts()
    rows = [[escape(str(k)), str(v), _pct(v, n)] for k, v in counts.items()]
    rows.append(["<b>kept</b>", str(n - len(filtered)), _pct(n - len(filtered), n)])
    out = _table(["reason", "molecules", "share of generated"], rows, numeric={1, 2})
    invalid = frame.loc[frame["reason_kind"] == "invalid", "failure"].value_counts().head(10)
    if len(invalid):
        why = "xyz2mol gave for" if read_by == "xyz2mol" else "RDKit gave for the graphs as written of"
        out += f"<p>Most common reasons {why} invalid molecules:</p>"
        out += _table(["failure", "molecules"], [[escape(str(k)), str(v)] for k, v in invalid.items()], numeric={1})
    return out


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table of already-escaped cells; columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = ["<tr>" + "".join(f"<td class=num>{c}</td>" if k in numeric else f"<td>{c}</td>" for k, c in enumerate(row))
            + "</tr>" for row in rows]  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _num(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):  # seeds: 63-bit, exact
        return str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if x != x:
        return ""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:.3f}"


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f} %" if den else "–"
