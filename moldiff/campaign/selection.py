"""From scored molecules to the campaign's answer: hard filters, desirability, duplicates, the
per-scaffold cap and the ranking. Every generated molecule keeps its row, with the reason it was
filtered (the first that applies, in this order):

1. ``invalid``: xyz2mol could not assign bonds, or a graph model's molecule as written is not
   valid (the message follows);
2. ``disconnected``: several fragments (``filters.connected``);
3. ``scaffold lost``: a scaffold campaign's molecule without the scaffold and its bond orders
   (``filters.scaffold``; e.g. a benzamide grown on its oxygen reads as an imidate; not computed:
   not filtered);
4. a range filter (``qed below 0.6``, ``mw above 500``), including a score that could not be computed;
5. a structural alert of a forbidden catalog (``PAINS alert``, with the alert names);
6. ``not novel`` (``filters.novel``), ``PoseBusters`` (``filters.posebusters``);
7. ``desirability 0``: a component vetoed it;

then, over the survivors in order of decreasing desirability (ties: lower index first):

8. ``duplicate``: the same SMILES was kept already (``filters.unique``);
9. ``scaffold cap``: ``diversity.max_per_scaffold`` molecules of its Murcko scaffold were kept
   already (acyclic molecules share one group).

Kept molecules are ranked 1, 2, ... in that order. The result depends only on the set of rows, so a
campaign split into shards and merged selects exactly what the unsplit campaign selects.
"""

from __future__ import annotations

import numpy as np

from moldiff.campaign.config import CampaignConfig
from moldiff.campaign.desirability import desirability

KEPT = "kept"
FILTERED = "filtered"


def select(frame, config: CampaignConfig):
    """Add ``desirability``, ``d_<component>``, ``status``, ``reason_kind``, ``reason`` and
    ``rank`` columns to a scored frame (rows in index order); returns a new frame."""
    import pandas as pd

    frame = frame.sort_values("index", kind="stable").reset_index(drop=True)
    n = len(frame)
    scores = {name: frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in config.desirability}
    total, parts = desirability(scores, config.desirability, n)
    valid = frame["valid"].to_numpy(dtype=bool)
    total = np.where(valid, total, np.nan)
    kinds, reasons = [""] * n, [""] * n
    for i, row in enumerate(frame.itertuples(index=False)):
        kinds[i], reasons[i] = _hard_filter(row._asdict(), config, total[i], {k: v[i] for k, v in parts.items()})
    order = sorted((i for i in range(n) if not kinds[i]), key=lambda i: (-total[i], int(frame.at[i, "index"])))
    rank = pd.array([None] * n, dtype="Int64")
    first_of: dict[str, int] = {}
    per_scaffold: dict[str, int] = {}
    cap = config.diversity.max_per_scaffold
    kept = 0
    for i in order:
        smiles, scaffold = frame.at[i, "smiles"], frame.at[i, "scaffold"]
        if config.filters.unique and smiles in first_of:
            kinds[i], reasons[i] = "duplicate", f"duplicate of molecule {first_of[smiles]}"
            continue
        first_of.setdefault(smiles, int(frame.at[i, "index"]))
        if cap is not None and per_scaffold.get(scaffold, 0) >= cap:
            shown = scaffold or "(acyclic)"
            kinds[i], reasons[i] = "scaffold cap", f"scaffold cap: {cap} molecules with scaffold {shown} kept already"
            continue
        per_scaffold[scaffold] = per_scaffold.get(scaffold, 0) + 1
        kept += 1
        rank[i] = kept
    out = frame.copy()
    out["desirability"] = total
    for name, d in parts.items():
        out[f"d_{name}"] = np.where(valid, d, np.nan)
    out["status"] = [FILTERED if k else KEPT for k in kinds]
    out["reason_kind"] = kinds
    out["reason"] = reasons
    out["rank"] = rank
    return out


def _hard_filter(row: dict, config: CampaignConfig, total: float, parts: dict) -> tuple[str, str]:
    """(kind, reason) of the first hard filter the molecule fails, or ("", "")."""
    f = config.filters
    if not row["valid"]:
        return "invalid", f"invalid: {row['failure']}"
    if f.connected and row["n_fragments"] > 1:
        return "disconnected", f"disconnected: {row['n_fragments']} fragments"
    if f.scaffold and not _missing(row.get("scaffold_intact")) and not row["scaffold_intact"]:
        return "scaffold lost", "scaffold lost: the molecule does not contain it with its bond orders"
    for name, bounds in f.ranges.items():
        value = row[name]
        if _missing(value):
            return f"{name} missing", f"{name} could not be computed"
        if bounds.min is not None and value < bounds.min:
            return f"{name} below {bounds.min:g}", f"{name} {value:.3g} < {bounds.min:g}"
        if bounds.max is not None and value > bounds.max:
            return f"{name} above {bounds.max:g}", f"{name} {value:.3g} > {bounds.max:g}"
    for catalog in f.alerts:
        if row[f"n_{catalog}"]:
            label = "PAINS" if catalog == "pains" else catalog.capitalize()
            return f"{label} alert", f"{label} alert: {row[catalog]}"
    if f.novel and not _true(row.get("novel")):
        return "not novel", "not novel: in the reference set"
    if f.posebusters and not _true(row.get("pb_pass")):
        return "PoseBusters", f"PoseBusters: failed {row.get('pb_failed') or 'checks'}"
    if total == 0:
        vetoes = [name for name, d in parts.items() if d == 0]
        return "desirability 0", f"desirability 0 ({', '.join(vetoes)} = 0)"
    return "", ""


def _missing(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _true(value) -> bool:
    return not _missing(value) and bool(value)
