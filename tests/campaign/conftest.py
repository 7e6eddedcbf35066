"""Fixtures for campaign tests: a tiny random-weight model, a tiny reference set, campaign files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from campaign_files import REFERENCE_SMILES, write_campaign

from moldiff.config import load_config
from moldiff.generator import build_network
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload


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
    """``campaign_file(name, **overrides)``: :func:`write_campaign` in this test's directory."""
    return lambda name="tiny", **overrides: write_campaign(tmp_path, tiny_model, reference_file, name, **overrides)
