"""Campaign files for the tests (a module, not a fixture, so module-scoped fixtures can use it)."""

from __future__ import annotations

from pathlib import Path

import yaml

REFERENCE_SMILES = ["CCO", "c1ccccc1", "CC(N)=O", "Oc1ccccc1", "NC(=O)c1ccccc1", "CCN", "C1CC1", "OCC(O)CO"]


def write_campaign(folder: Path, model: Path, reference: Path, name: str = "tiny", **overrides) -> Path:
    """A campaign file for the tiny model (11 molecules in batches of 3, 4 steps) in ``folder``;
    keyword arguments replace top-level keys."""
    raw = {
        "name": name,
        "model": str(model),
        "n_molecules": 11,
        "seed": 5,
        "output_dir": str(folder / name),
        "sampling": {"steps": 4, "batch_size": 3},
        "scoring": {"reference": str(reference), "fcd": False},
        "filters": {"ranges": {"qed": {"min": 0.2}}, "alerts": ["pains"]},
        "desirability": {"qed": {"transform": "sigmoid", "low": 0.2, "high": 0.6, "weight": 2}},
        "diversity": {"max_per_scaffold": 2},
        "tracking": {"enabled": False},
    }
    raw.update(overrides)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
