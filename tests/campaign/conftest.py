"""Fixtures for campaign tests: a tiny random-weight model, a tiny reference set, campaign files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from moldiff.config import load_config
from moldiff.generator import build_network
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload

REFERENCE_SMILES = ["CCO", "c1ccccc1", "CC(N)=O", "Oc1ccccc1", "NC(=O)c1ccccc1", "CCN", "C1CC1", "OCC(O)CO"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained EGNN (16 wide, 2 layers): fast, and its molecules exercise every failure path."""
    cfg = load_config(None, ["model.hidden=16", "model.layers=2"])
    torch.manual_seed(0)
    net = build_network(cfg)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model_payload(cfg, net.state_dict(), {5: 1, 9: 2, 12: 1}, 0, []))
    return path


@pytest.fixture(scope="session")
def reference_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ref") / "reference.smi"
    path.write_text("\n".join(REFERENCE_SMILES) + "\n")
    return path


@pytest.fixture
def campaign_file(tmp_path, tiny_model, reference_file):
    """Write a campaign file with the tiny model; keyword arguments override top-level keys."""

    def write(name: str = "tiny", **overrides) -> Path:
        raw = {
            "name": name,
            "model": str(tiny_model),
            "n_molecules": 11,
            "seed": 5,
            "output_dir": str(tmp_path / name),
            "sampling": {"steps": 4, "batch_size": 3},
            "scoring": {"reference": str(reference_file), "fcd": False},
            "filters": {"ranges": {"qed": {"min": 0.2}}, "alerts": ["pains"]},
            "desirability": {"qed": {"transform": "sigmoid", "low": 0.2, "high": 0.6, "weight": 2}},
            "diversity": {"max_per_scaffold": 2},
            "tracking": {"enabled": False},
        }
        raw.update(overrides)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write
