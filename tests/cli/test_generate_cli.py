"""``moldiff sample`` and ``moldiff train`` from the command line: outputs, determinism, bad input."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from moldiff.chem.io import read_sdf
from moldiff.cli.main import main
from moldiff.config import SampleConfig, load_config
from moldiff.generator import build_network
from moldiff.models import load_generator
from moldiff.sampling import atom_counts, molecule_seeds
from moldiff.solvers import sample_ddpm, uniform_times
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained small model: enough to test formats and determinism."""
    cfg = load_config(None, ["model.hidden=16", "model.layers=2"])
    torch.manual_seed(0)
    net = build_network(cfg)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(path, model_payload(cfg, net.state_dict(), {5: 1, 9: 2, 12: 1}, 0, []))
    return path


def _one_line_error(capsys, code):
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def test_sample_writes_sdf_and_csv_with_the_same_rows(model_file, tmp_path):
    out = tmp_path / "s.sdf"
    assert main(["sample", "-n", "6", "-o", str(out), "--model", str(model_file), "--steps", "5", "--json"]) == 0
    mols, rejects = read_sdf(out)
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert len(mols) + len(rejects) == 6 == len(frame)
    assert set(mols.n_atoms) <= {5, 9, 12}
    assert {"smiles", "failure", "mol_stable", "valid", "seed"} <= set(frame.columns)
    assert out.with_suffix(".run.json").exists()


def test_json_keeps_stdout_one_object_and_shows_progress_on_stderr(model_file, tmp_path, capsys):
    out = tmp_path / "s.sdf"
    assert main(["sample", "-n", "3", "-o", str(out), "--model", str(model_file), "--steps", "3", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 3
    assert "sampling: 3/3" in captured.err


def test_same_seed_same_molecules_other_seed_differs(model_file, tmp_path):
    args = ["sample", "-n", "4", "--model", str(model_file), "--steps", "5", "--json"]
    main(args + ["-o", str(tmp_path / "a.sdf"), "--seed", "3"])
    main(args + ["-o", str(tmp_path / "b.sdf"), "--seed", "3"])
    main(args + ["-o", str(tmp_path / "c.sdf"), "--seed", "4"])
    a, b, c = (read_sdf(tmp_path / f"{k}.sdf")[0] for k in "abc")
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.atomic_numbers, b.atomic_numbers)
    assert a.positions.shape != c.positions.shape or not np.allclose(a.positions, c.positions)


def test_fixed_atom_count(model_file, tmp_path):
    out = tmp_path / "f.sdf"
    assert main(["sample", "-n", "3", "-o", str(out), "--model", str(model_file), "--steps", "3",
                 "--n-atoms", "7", "--json"]) == 0  # fmt: skip
    assert list(read_sdf(out)[0].n_atoms) == [7, 7, 7]


def test_one_molecule_regenerates_alone_from_its_seed(model_file):
    gen, _, _ = load_generator(str(model_file))
    seeds, counts = molecule_seeds(11, 5), atom_counts(gen, 11, 5)
    times = uniform_times(4)
    batch = gen.sample(seeds, counts, solver=sample_ddpm, times=times)
    alone = gen.sample(seeds[3:4], counts[3:4], solver=sample_ddpm, times=times)
    _, pos_batch = batch.molecule(3)
    assert np.allclose(alone.positions, pos_batch, atol=1e-4)


@pytest.mark.parametrize("args, needle", [
    (["-n", "0"], "-n: expected an integer >= 1 (got 0)"),
    (["--steps", "0"], "--steps"),
    (["--n-atoms", "0"], "--n-atoms"),
    (["--solver", "magic"], "unknown solver"),
    (["-o", "out.txt"], "--output: must end in .sdf"),
    (["--model", "does/not/exist.pt"], "no model file"),
    (["--precision", "fp16"], "--precision: expected one of 'fp32', 'bf16', 'auto' (got 'fp16')"),
])  # fmt: skip
def test_sample_bad_arguments(args, needle, model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["sample", "--model", str(model_file), "-o", "x.sdf"]
    err = _one_line_error(capsys, main(base + args))
    assert needle in err


def test_bf16_sampling_is_recorded_and_repeatable(model_file, tmp_path):
    runs = []
    for name, precision in (("a", "bf16"), ("b", "bf16"), ("c", "fp32")):
        out = tmp_path / f"{name}.sdf"
        assert main(["sample", "-n", "3", "-o", str(out), "--model", str(model_file), "--steps", "3",
                     "--precision", precision, "--json"]) == 0  # fmt: skip
        runs.append(read_sdf(out)[0])
    assert json.loads((tmp_path / "a.run.json").read_text())["precision"] == "bf16"
    assert np.array_equal(runs[0].positions, runs[1].positions)  # same seed, same molecules
    assert not np.array_equal(runs[0].positions, runs[2].positions)  # and bfloat16 did run


def test_wrong_checkpoint_files_are_refused(tmp_path, capsys):
    cases = {
        "garbage.pt": b"this is not a checkpoint",
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"kind": "someone-elses-model", "format": 1}, tmp_path / "otherkind.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"kind": Evil()}))
    for name in ["garbage.pt", "empty.pt", "otherkind.pt", "list.pt", "evil.pt"]:
        code = main(["sample", "-n", "1", "--model", str(tmp_path / name), "-o", str(tmp_path / "o.sdf")])
        err = _one_line_error(capsys, code)
        assert "code ran" not in err
        assert "weights_only" not in err  # never the advice to switch the safe loader off
    assert "refused by the safe loader" in err  # evil.pt, last
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize("extra, needle", [
    (["--set", "train.no_such_key=1"], "unknown key 'train.no_such_key'"),
    (["--set", "train.lr=fast"], "train.lr"),
    (["--set", "justtext"], "key=value"),
    (["--config", "missing.yaml"], "config file not found"),
    (["--set", "data.elements=[H, C, Xq]"], "Xq"),
    (["--set", "data.dataset=foo.txt"], ".npz"),
    (["--set", "data.dataset=foo.csv"], "no such file: foo.csv"),
    (["--set", "data.subset=100"], "moses dataset only"),
    (["--set", "train.precision=fp16"], "train.precision"),
])  # fmt: skip
def test_train_bad_config(extra, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = _one_line_error(capsys, main(["train", "--no-track", "--set", "train.max_steps=1", *extra]))
    assert needle in err


def test_train_invalid_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    err = _one_line_error(capsys, main(["train", "--no-track", "--config", str(bad)]))
    assert "not valid YAML" in err


def test_sample_config_file_with_options_overriding_it(model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample.yaml").write_text(yaml.safe_dump({
        "model": str(model_file), "n": 3, "seed": 3, "output": "a.sdf", "novelty": False,
        "sampling": {"solver": "ddim", "options": {"eta": 0.5}, "steps": 4}}))  # fmt: skip
    assert main(["sample", "--config", "sample.yaml", "--json"]) == 0
    flags = ["--model", str(model_file), "-n", "3", "--seed", "3", "--solver", "ddim", "--solver-opt", "eta=0.5",
             "--steps", "4", "--no-novelty", "--json"]  # fmt: skip
    assert main(["sample", *flags, "-o", "b.sdf"]) == 0
    assert main(["sample", "--config", "sample.yaml", "--seed", "4", "--set", "n=2", "-o", "c.sdf", "--json"]) == 0
    a, b, c = (read_sdf(tmp_path / f"{k}.sdf")[0] for k in "abc")
    assert np.array_equal(a.positions, b.positions)  # the file and the options describe the same run
    assert len(c.n_atoms) == 2 and not np.array_equal(a.positions[: len(c.positions)], c.positions)
    saved = json.loads((tmp_path / "c.run.json").read_text())["sample"]  # the resolved config
    assert (saved["seed"], saved["n"], saved["output"], saved["sampling"]["solver"]) == (4, 2, "c.sdf", "ddim")
    assert SampleConfig.model_validate(saved).sampling.options == {"eta": 0.5}


@pytest.mark.parametrize("name, graph, bond_source", [("qm9", True, "model"), ("qm9-edm", False, "edm-distance-table")])
def test_qm9_is_the_graph_model_and_qm9_edm_the_coordinate_model(name, graph, bond_source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = [] if name == "qm9" else ["--model", name]  # qm9 is the default
    assert main(["sample", "-n", "2", "--steps", "10", "--no-novelty", "-o", "s.sdf", "--json", *model]) == 0
    record = json.loads((tmp_path / "s.run.json").read_text())
    assert record["sample"]["model"] == name and record["config"]["data"]["graph"] is graph
    assert record["config"]["data"]["hydrogens"] is not graph  # the graph model generates heavy atoms
    assert set(pd.read_csv(tmp_path / "s.csv")["bond_source"]) == {bond_source}
    molecules, rejects = read_sdf(tmp_path / "s.sdf", require_bonds=True)
    assert len(molecules) == 2 and not rejects and (molecules.atomic_numbers == 1).any()  # hydrogens written
