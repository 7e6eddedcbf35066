"""A campaign of a graph model (data.graph) reads its molecules by the bonds and charges the model
wrote, says so in its outputs, and resumes, shards and regenerates as any campaign does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from campaign_files import write_campaign
from rdkit import Chem

from moldiff.campaign.config import load_campaign
from moldiff.campaign.runner import BATCHES, collect, regenerate_saved
from moldiff.chem.io import read_sdf
from moldiff.chem.scoring import written_molecules
from moldiff.cli.main import main

SAME_IN_EVERY_RUN = ("molecules.csv", "molecules.sdf", "metrics.json")
SETTINGS = {"n_molecules": 5, "sampling": {"steps": 4, "batch_size": 2}}


@pytest.fixture(scope="module")
def whole(tmp_path_factory, tiny_graph_model, reference_file):
    """One whole run of a graph model's campaign (5 molecules in batches of 2)."""
    folder = tmp_path_factory.mktemp("graph_campaign")
    path = write_campaign(folder, tiny_graph_model, reference_file, "graph", output_dir=str(folder / "out"), **SETTINGS)
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    return path, folder / "out"


def test_a_graph_campaign_reads_and_writes_the_models_own_bonds(whole):
    path, out = whole
    frame = pd.read_csv(out / "molecules.csv")
    assert frame["bond_source"].tolist() == ["model"] * 5
    molecules, scores, _ = collect(load_campaign(path), [out])
    assert molecules.has_bonds  # the batch files keep the model's graph
    mols, reasons = written_molecules(molecules)
    assert scores["valid"].tolist() == [m is not None for m in mols]
    assert [f if isinstance(f, str) else "" for f in frame["failure"]] == reasons
    assert not any("xyz2mol" in r for r in reasons)
    sdf = [m for m in Chem.SDMolSupplier(str(out / "molecules.sdf"), sanitize=False, removeHs=False)]
    assert [m.GetProp("bond_source") for m in sdf] == ["model"] * 5
    written, _ = read_sdf(out / "molecules.sdf")
    for i in range(5):  # the SDF holds the model's bonds and charges, not bonds read from coordinates
        assert {tuple(b) for b in written.molecule_bonds(i).tolist()} == {tuple(b) for b in molecules.molecule_bonds(i).tolist()}
    assert np.array_equal(written.charges, molecules.charges)
    assert "own bonds" in (out / "report.html").read_text()


def test_a_graph_campaign_resumes_and_its_shards_merge_into_the_whole_run(whole, tmp_path):
    path, out = whole
    resumed = tmp_path / "resumed"
    assert main(["campaign", "run", str(path), "--shard", "0/2", "-o", str(resumed), "--no-track"]) == 0
    assert main(["campaign", "run", str(path), "--resume", "-o", str(resumed), "--no-track"]) == 0
    other = tmp_path / "shard1"
    assert main(["campaign", "run", str(path), "--shard", "1/2", "-o", str(other), "--no-track"]) == 0
    merged = tmp_path / "merged"
    assert main(["campaign", "merge", str(resumed), str(other), "-o", str(merged), "--no-track"]) == 0
    for name in SAME_IN_EVERY_RUN:
        assert (resumed / name).read_bytes() == (out / name).read_bytes(), name
        assert (merged / name).read_bytes() == (out / name).read_bytes(), name


def test_a_graph_campaigns_molecules_regenerate_with_their_bonds(whole, tmp_path):
    _, out = whole
    again = regenerate_saved(out, [3, 1], log=lambda m: None)
    assert again.deviation == [0.0, 0.0] and again.compared_with == ["batch", "batch"]
    saved, _, _ = collect(again.config, [out])
    for k, i in enumerate([3, 1]):
        assert np.array_equal(again.molecules.molecule_bonds(k), saved.molecule_bonds(i))
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / BATCHES)  # only molecules.sdf is left to compare with: bonds and charges too
    again = regenerate_saved(copy, [3], log=lambda m: None)
    assert again.deviation == [0.0] and again.compared_with == ["molecules.sdf"]


def test_a_steered_graph_campaign_counts_molecules_by_their_own_bonds(tiny_graph_model, reference_file, tmp_path):
    path = write_campaign(tmp_path, tiny_graph_model, reference_file, "steered", n_molecules=2,
                          sampling={"steps": 4, "batch_size": 2}, steer={"rewards": "valid", "particles": 2})  # fmt: skip
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    run = json.loads((tmp_path / "steered" / "run.json").read_text())
    assert run["guidance"]["steer"]["reader"] == "model"
