"""Steered campaigns: guidance and scaffolds in every batch, the scaffold found in every molecule,
shards that still merge into exactly the unsplit run, and model-dependent mistakes as one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from campaign_files import write_campaign

from moldiff.chem.io import read_sdf
from moldiff.chem.substructure import fragment_from_smiles
from moldiff.cli.main import main
from moldiff.config import PredictorConfig, load_config
from moldiff.generator import build_network
from moldiff.nets import PropertyPredictor
from moldiff.property_model import PREDICTOR
from moldiff.sampling import molecule_seeds
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload

SCAFFOLD = "c1ccncc1"  # pyridine: 6 heavy atoms, fits the tiny model's sizes 9 and 12
SAME_IN_EVERY_RUN = ("molecules.csv", "molecules.sdf", "metrics.json")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    """An untrained qed/logp predictor that reads the tiny model's atoms."""
    cfg = PredictorConfig(targets=["qed", "logp"], model={"hidden": 8, "layers": 1})
    torch.manual_seed(1)
    net = PropertyPredictor(5, 2, hidden=8, layers=1)
    path = tmp_path_factory.mktemp("predictor") / "predictor.pt"
    save_checkpoint(path, {"kind": PREDICTOR, "config": cfg.model_dump(), "weights": net.state_dict(),
                           "target_stats": {"qed": [0.45, 0.1], "logp": [0.3, 1.0]}, "step": 0, "history": []})  # fmt: skip
    return path


@pytest.fixture(scope="module")
def cond_model(tmp_path_factory):
    """A tiny conditional (gap, mu) model for classifier-free guidance."""
    cfg = load_config(None, ["model.hidden=16", "model.layers=2", "data.properties=[gap, mu]"])
    torch.manual_seed(0)
    net = build_network(cfg)
    path = tmp_path_factory.mktemp("cond") / "cond.pt"
    stats = {"property_stats": {"gap": [6000.0, 1000.0], "mu": [2.5, 1.0]}}
    save_checkpoint(path, model_payload(cfg, net.state_dict(), {5: 1, 9: 2, 12: 1}, 0, []) | stats)
    return path


def _steering(predictor) -> dict:
    return {"guidance": {"guide": {"qed": "max", "logp": {"value": 1.5, "weight": 0.5}}, "predictor": str(predictor),
                         "guide_scale": 0.5},
            "scaffold": {"smiles": SCAFFOLD, "jump": 2, "resample": 2}}  # fmt: skip


@pytest.fixture(scope="module")
def steered(tmp_path_factory, tiny_model, reference_file, predictor):
    """One whole run of the tiny campaign with a scaffold and regressor guidance."""
    folder = tmp_path_factory.mktemp("steered")
    path = write_campaign(folder, tiny_model, reference_file, **_steering(predictor))
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    return folder / "tiny"


def test_every_molecule_holds_the_scaffold_and_says_so(steered):
    frame = pd.read_csv(steered / "molecules.csv")
    assert frame["seed"].tolist() == molecule_seeds(5, 11)
    assert frame["contains_scaffold"].tolist() == [True] * 11
    assert {"scaffold_exact", "scaffold_intact", "predicted_qed", "predicted_logp"} <= set(frame.columns)
    assert not frame.loc[frame["smiles"].isna(), "scaffold_intact"].any()  # unreadable: never intact
    fragment = fragment_from_smiles(SCAFFOLD)
    mols, rejects = read_sdf(steered / "molecules.sdf")
    assert len(mols) == 11 and not rejects
    for i in range(len(mols)):
        z, pos = mols.molecule(i)
        assert len(z) in (9, 12) and z[:6].tolist() == fragment.atomic_numbers.tolist()
        # SDF keeps 4 decimals; the untrained model flings some atoms megametres away, and float32
        # coordinates then round the scaffold at that scale
        tol = 1e-3 + 4 * float(np.spacing(np.float32(np.abs(pos).max())))
        np.testing.assert_allclose(pos[:6], fragment.positions, atol=tol)
    metrics = json.loads((steered / "metrics.json").read_text())
    assert metrics["scaffold_containment"] == 1.0 and 0 <= metrics["scaffold_exact"] <= 1
    assert metrics["scaffold_intact"] == frame["scaffold_intact"].mean()
    record = json.loads((steered / "run.json").read_text())["guidance"]
    assert record["scaffold"]["atoms"] == 6 and record["guides"] == [
        {"name": "logp", "target": 1.5, "direction": 0, "weight": 0.5},
        {"name": "qed", "target": None, "direction": 1, "weight": 1.0}]  # fmt: skip
    html = (steered / "report.html").read_text()
    assert "Steered by" in html and "qed → max" in html and f"{SCAFFOLD} (6 atoms kept" in html
    assert "scaffold found in 11 molecules (100.0 %)" in html and "contain the scaffold (graph)" in html


def test_any_molecule_of_a_steered_campaign_regenerates_exactly(steered, tmp_path, capsys):
    out = tmp_path / "again.sdf"
    assert main(["campaign", "regenerate", str(steered), "7", "1", "7", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "molecule 7: identical to the campaign's (batch)" in printed and "molecule 1: identical" in printed
    assert "2 molecules ->" in printed  # 7 asked twice, written once
    again, _ = read_sdf(out)
    saved, _ = read_sdf(steered / "molecules.sdf")
    for k, i in enumerate((7, 1)):
        assert np.allclose(again.molecule(k)[1], saved.molecule(i)[1], atol=1e-3)
        assert (again.molecule(k)[0] == saved.molecule(i)[0]).all()
    from rdkit import Chem

    written = [m.GetProp("seed") for m in Chem.SDMolSupplier(str(out), sanitize=False, removeHs=False)]
    assert written == [str(molecule_seeds(5, 11)[i]) for i in (7, 1)]
    assert main(["campaign", "regenerate", str(steered), "11"]) == 2
    assert "molecule indices must be in 0..10" in capsys.readouterr().err
    assert main(["campaign", "regenerate", str(tmp_path), "0"]) == 2  # not a campaign directory


def test_regenerate_checks_merged_outputs_and_refuses_a_changed_model(steered, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(steered, copy)
    shutil.rmtree(copy / "batches")  # as a merge's output directory: molecules.sdf only
    assert main(["campaign", "regenerate", str(copy), "4"]) == 0
    assert "molecule 4: identical to the campaign's (molecules.sdf)" in capsys.readouterr().out
    run = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**run, "model_sha256": "0" * 16}))
    assert main(["campaign", "regenerate", str(copy), "4"]) == 2
    assert "is not the model file this campaign used" in capsys.readouterr().err
    (copy / "campaign.yaml").write_text("name: [unclosed")
    assert main(["campaign", "regenerate", str(copy), "4"]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_steered_shards_merge_into_exactly_the_unsplit_run(steered, campaign_file, predictor, tmp_path, capsys):
    path = campaign_file("tiny", **_steering(predictor))
    dirs = [str(tmp_path / f"shard{k}") for k in range(2)]
    for k, folder in enumerate(dirs):
        assert main(["campaign", "run", str(path), "--shard", f"{k}/2", "-o", folder, "--no-track"]) == 0
    assert main(["campaign", "merge", *dirs, "-o", str(tmp_path / "merged"), "--no-track"]) == 0
    for name in SAME_IN_EVERY_RUN:
        assert (tmp_path / "merged" / name).read_bytes() == (steered / name).read_bytes(), name
    marker = tmp_path / "shard1" / "batches" / "batch_00001.json"  # as if shard 1 had another scaffold file
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "steering_sha256": "0" * 16}))
    capsys.readouterr()
    assert main(["campaign", "merge", *dirs, "-o", str(tmp_path / "again"), "--no-track"]) == 2
    assert "steered with different predictor or scaffold files" in capsys.readouterr().err


def test_guidance_changes_the_molecules_and_adds_its_columns(campaign_file, predictor, tmp_path):
    guide = {"guide": {"qed": "max"}, "predictor": str(predictor)}
    runs = {}
    for scale in (0.0, 5.0):  # scale 0 is the unguided model exactly
        path = campaign_file(f"guided{int(scale)}", n_molecules=4, guidance={**guide, "guide_scale": scale})
        assert main(["campaign", "run", str(path), "--no-track"]) == 0
        runs[scale] = (pd.read_csv(tmp_path / f"guided{int(scale)}" / "molecules.csv"),
                       read_sdf(tmp_path / f"guided{int(scale)}" / "molecules.sdf")[0])  # fmt: skip
    (plain, plain_mols), (guided, guided_mols) = runs[0.0], runs[5.0]
    assert plain["seed"].tolist() == guided["seed"].tolist() and plain["n_atoms"].tolist() == guided["n_atoms"].tolist()
    assert not np.allclose(plain_mols.positions, guided_mols.positions, atol=1e-3)
    assert guided["predicted_qed"].notna().all() and "contains_scaffold" not in guided


def test_targets_of_a_conditional_model(cond_model, reference_file, tmp_path):
    path = write_campaign(tmp_path, cond_model, reference_file, "cond", n_molecules=3,
                          guidance={"targets": {"gap": "4.5eV", "mu": 0.5}, "guidance_scale": 2})  # fmt: skip
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    frame = pd.read_csv(tmp_path / "cond" / "molecules.csv")
    assert np.allclose(frame["target_gap"], 4500.0) and np.allclose(frame["target_mu"], 0.5)
    assert "gap = 4500 meV" in (tmp_path / "cond" / "report.html").read_text()


@pytest.mark.parametrize("model, overrides, needle", [
    ("tiny", {"guidance": {"targets": {"gap": "4.5eV"}}}, "this model is not conditional"),
    ("cond", {"guidance": {"targets": {"gap": "4.5eV"}}}, "conditioned on gap, mu together: give a target for each"),
    ("tiny", {"guidance": {"guide": {"qed": "max"}, "predictor": "missing.pt"}}, "no predictor file missing.pt"),
    ("tiny", {"guidance": {"guide": {"gap": "max"}, "predictor": "PREDICTOR"}}, "not gap"),
    ("tiny", {"scaffold": "C[Si](C)C"}, "the scaffold does not fit this model"),
    ("tiny", {"scaffold": "missing.sdf"}, "no such file"),
    ("tiny", {"scaffold": SCAFFOLD, "sampling": {"steps": 4, "n_atoms": 6}}, "n_atoms (6) must exceed"),
])  # fmt: skip
def test_steering_the_model_cannot_take_is_one_line(tiny_model, cond_model, reference_file, predictor, tmp_path,
                                                     capsys, monkeypatch, model, overrides, needle):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    overrides = json.loads(json.dumps(overrides).replace("PREDICTOR", str(predictor)))
    path = write_campaign(tmp_path, {"tiny": tiny_model, "cond": cond_model}[model], reference_file, "bad", **overrides)
    assert main(["campaign", "run", str(path), "--no-track"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err and needle in err, err


def test_a_start_the_model_refused_does_not_block_the_corrected_file(campaign_file, capsys):
    bad = campaign_file("retry", n_molecules=2, guidance={"targets": {"gap": "4.5eV"}})
    assert main(["campaign", "run", str(bad), "--no-track"]) == 2
    assert "not conditional" in capsys.readouterr().err
    fixed = campaign_file("retry", n_molecules=2, scaffold=SCAFFOLD)
    assert main(["campaign", "run", str(fixed), "--no-track"]) == 0


def test_particle_steering_in_a_campaign_records_itself_and_keeps_molecules_per_seed(campaign_file, tmp_path):
    steer = {"rewards": "valid", "reader": "xyz2mol", "particles": 3}
    path = campaign_file("particles", n_molecules=4, steer=steer)
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    frame = pd.read_csv(tmp_path / "particles" / "molecules.csv")
    assert frame["seed"].tolist() == molecule_seeds(5, 4)
    record = json.loads((tmp_path / "particles" / "run.json").read_text())["guidance"]["steer"]
    assert record["particles"] == 3 and record["reader"] == "xyz2mol" and record["rewards"] == "valid"
    html = (tmp_path / "particles" / "report.html").read_text()
    assert "steering with 3 particles per molecule, the best kept (reward valid, molecules read by xyz2mol)" in html
    one = campaign_file("particles_one", n_molecules=4, steer={**steer, "particles": 1}, seed=5)
    plain = campaign_file("plain", n_molecules=4)
    assert main(["campaign", "run", str(one), "--no-track"]) == 0 and main(["campaign", "run", str(plain), "--no-track"]) == 0
    a, _ = read_sdf(tmp_path / "particles_one" / "molecules.sdf")
    b, _ = read_sdf(tmp_path / "plain" / "molecules.sdf")
    np.testing.assert_array_equal(a.positions, b.positions)  # one particle is plain sampling
