"""Campaign runs end to end: outputs, per-molecule seeds, resuming without regenerating, and
shards that merge into exactly the unsplit run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from campaign_files import write_campaign

from moldiff.campaign.config import load_campaign
from moldiff.campaign.runner import OUTPUTS, Shard, run_campaign
from moldiff.chem.io import read_sdf
from moldiff.cli.main import main
from moldiff.sampling import molecule_seeds

SAME_IN_EVERY_RUN = ("molecules.csv", "molecules.sdf", "metrics.json")


@pytest.fixture(scope="module")
def unsplit(tmp_path_factory, tiny_model, reference_file):
    """One whole run of the tiny campaign (11 molecules in batches of 3), shared by the tests."""
    folder = tmp_path_factory.mktemp("unsplit")
    path = write_campaign(folder, tiny_model, reference_file, output_dir=str(folder / "out"))
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    return folder / "out"


def test_outputs_one_row_per_molecule_with_seed_and_reason(unsplit):
    for name in ("campaign.yaml", *OUTPUTS):
        assert (unsplit / name).is_file(), name
    frame = pd.read_csv(unsplit / "molecules.csv")
    assert frame["index"].tolist() == list(range(11))
    assert frame["seed"].tolist() == molecule_seeds(5, 11)
    assert {"smiles", "failure", "qed", "sa", "logp", "mw", "tpsa", "hbd", "hba", "rotatable_bonds",
            "lipinski_violations", "pains", "brenk", "scaffold", "novel", "nn_similarity", "edm_valid",
            "desirability", "status", "reason", "rank"} <= set(frame.columns)  # fmt: skip
    assert set(frame["status"]) <= {"kept", "filtered"}
    assert (frame.loc[frame["status"] == "filtered", "reason"].str.len() > 0).all()
    mols, rejects = read_sdf(unsplit / "molecules.sdf")
    assert len(mols) + len(rejects) == 11 and np.array_equal(mols.n_atoms, frame["n_atoms"].to_numpy())
    metrics = json.loads((unsplit / "metrics.json").read_text())
    assert metrics["n"] == 11 and sum(metrics["filtered"].values()) + metrics["n_kept"] == 11
    run = json.loads((unsplit / "run.json").read_text())
    assert run["seed"] == 5 and run["model_sha256"] and "rdkit" in run["versions"]


def test_shards_merge_into_exactly_the_unsplit_run(unsplit, campaign_file, tmp_path):
    path = campaign_file("tiny")
    dirs = []
    for k in range(3):
        folder = tmp_path / f"shard{k}"
        assert main(["campaign", "run", str(path), "--shard", f"{k}/3", "-o", str(folder), "--no-track"]) == 0
        assert not (folder / "molecules.csv").exists()  # a shard only writes batches
        dirs.append(str(folder))
    merged = tmp_path / "merged"
    assert main(["campaign", "merge", *dirs, "-o", str(merged), "--no-track"]) == 0
    for name in SAME_IN_EVERY_RUN:
        assert (merged / name).read_bytes() == (unsplit / name).read_bytes(), name


def test_bf16_campaign_shards_merge_into_its_unsplit_run(unsplit, tiny_model, reference_file, tmp_path):
    sampling = {"steps": 4, "batch_size": 3, "precision": "bf16"}
    path = write_campaign(tmp_path, tiny_model, reference_file, sampling=sampling, output_dir=str(tmp_path / "whole"))
    assert main(["campaign", "run", str(path), "--no-track"]) == 0
    shards = [str(tmp_path / f"shard{k}") for k in range(2)]
    for k, folder in enumerate(shards):
        assert main(["campaign", "run", str(path), "--shard", f"{k}/2", "-o", folder, "--no-track"]) == 0
    assert main(["campaign", "merge", *shards, "-o", str(tmp_path / "merged"), "--no-track"]) == 0
    for name in SAME_IN_EVERY_RUN:
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    bf16, fp32 = (read_sdf(d / "molecules.sdf")[0].positions for d in (tmp_path / "whole", unsplit))
    assert bf16.shape == fp32.shape and not np.array_equal(bf16, fp32)  # it did run in bfloat16
    assert json.loads((tmp_path / "whole" / "run.json").read_text())["precision"] == "bf16"
    # a shard made on a machine where "auto" meant fp32 cannot be merged in silently
    meta_path = next((tmp_path / "shard1").rglob("*[0-9].json"))
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "precision": "fp32"}))
    assert main(["campaign", "merge", *shards, "-o", str(tmp_path / "mixed"), "--no-track"]) != 0


def test_interrupted_campaign_resumes_without_regenerating(unsplit, campaign_file, tmp_path):
    config = load_campaign(campaign_file("tiny"))
    done = []

    def stop_after_two_batches(k):
        done.append(k)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_campaign(config, track=False, progress=stop_after_two_batches, log=lambda m: None)
    out = config.out_dir()
    first = {p.name: p.stat().st_mtime_ns for p in (out / "batches").glob("batch_*")}
    assert len(first) == 6  # two finished batches, three files each
    with pytest.raises(Exception, match="--resume"):
        run_campaign(config, track=False, log=lambda m: None)
    messages = []
    run_campaign(config, resume=True, track=False, log=messages.append)
    assert any("2 finished batches" in m for m in messages)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "batches").glob("batch_*") if p.name in first} == first
    for name in SAME_IN_EVERY_RUN:
        assert (out / name).read_bytes() == (unsplit / name).read_bytes(), name


def test_refuses_a_different_campaign_or_missing_batches(campaign_file, tmp_path, capsys):
    path = campaign_file("tiny")
    assert main(["campaign", "run", str(path), "--shard", "0/2", "--no-track"]) == 0
    capsys.readouterr()
    other = campaign_file("tiny", seed=6, output_dir=str(tmp_path / "tiny"))
    assert main(["campaign", "run", str(other), "--resume", "--no-track"]) == 2
    assert "holds a different campaign (its key seed differs)" in capsys.readouterr().err
    assert main(["campaign", "merge", str(tmp_path / "tiny"), "--no-track"]) == 2
    err = capsys.readouterr().err
    assert "batch 1 of 4 (molecules 3-5) is missing" in err and "\n" not in err.strip()
    assert main(["campaign", "run", str(path), "--shard", "2/2", "--no-track"]) == 2
    assert "0 <= K < N" in capsys.readouterr().err
    # batches fingerprinted otherwise (another reading of the same file) are refused before any work
    marker = tmp_path / "tiny" / "batches" / "batch_00000.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "fingerprint": "0123456789abcdef"}))
    assert main(["campaign", "run", str(campaign_file("tiny")), "--resume", "--no-track"]) == 2
    err = capsys.readouterr().err
    assert "holds batches fingerprinted 0123456789abcdef" in err and "use another output_dir" in err


def test_shard_parsing_and_batch_assignment():
    assert Shard.parse("1/3").batches(8) == [1, 4, 7]
    assert sorted(b for k in range(3) for b in Shard.parse(f"{k}/3").batches(8)) == list(range(8))


def test_finished_campaign_is_one_mlflow_run_with_every_file(campaign_file, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/track.db"
    path = campaign_file("tracked", n_molecules=4, tracking={"enabled": True, "experiment": "camp-test"})
    assert main(["campaign", "run", str(path), "--tracking-uri", uri]) == 0
    run_id = json.loads((tmp_path / "tracked" / "run.json").read_text())["mlflow_run_id"]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.data.params["n_molecules"] == "4" and run.data.metrics["n"] == 4
    logged = {a.path for a in client.list_artifacts(run_id)}
    assert {"campaign.yaml", *OUTPUTS} <= logged
    assert run_id in (tmp_path / "tracked" / "report.html").read_text()
    experiment = client.get_experiment_by_name("camp-test")
    assert len(client.search_runs([experiment.experiment_id])) == 1
