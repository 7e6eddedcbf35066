"""``moldiff sample`` with --target, --guide and --scaffold: outputs gain their columns, the scaffold
sits where the fragment was, and bad input is a one-line error."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from moldiff import defaults
from moldiff.chem.conformers import smiles_to_3d
from moldiff.chem.io import read_sdf, write_sdf
from moldiff.cli.main import main
from moldiff.config import PredictorConfig, load_config
from moldiff.data.molset import MolSet
from moldiff.generator import build_network
from moldiff.nets import PropertyPredictor
from moldiff.property_model import PREDICTOR
from moldiff.train.checkpoint import save_checkpoint
from moldiff.train.loop import model_payload

HIST = {6: 1, 9: 2, 12: 1}


def _model(path, properties=(), *overrides):
    cfg = load_config(None, ["model.hidden=16", "model.layers=2", f"data.properties=[{', '.join(properties)}]",
                             *overrides])  # fmt: skip
    torch.manual_seed(0)
    net = build_network(cfg)
    for p in net.parameters():
        p.data.add_(0.02 * torch.randn_like(p))
    stats = {"property_stats": {p: [6000.0, 1000.0] for p in properties}} if properties else {}
    save_checkpoint(path, model_payload(cfg, net.state_dict(), HIST, 0, []) | stats)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("guidance")
    cfg = PredictorConfig(targets=["qed", "logp"], model={"hidden": 8, "layers": 1})
    torch.manual_seed(1)
    net = PropertyPredictor(5, 2, hidden=8, layers=1)
    save_checkpoint(root / "predictor.pt", {"kind": PREDICTOR, "config": cfg.model_dump(), "weights": net.state_dict(),
                                            "target_stats": {"qed": [0.45, 0.1], "logp": [0.3, 1.0]},
                                            "step": 0, "history": []})  # fmt: skip
    cfg = PredictorConfig(targets=["gap", "mu"], model={"hidden": 8, "layers": 1})
    save_checkpoint(root / "predictor_qm9.pt", {"kind": PREDICTOR, "config": cfg.model_dump(),
                                                "weights": PropertyPredictor(5, 2, hidden=8, layers=1).state_dict(),
                                                "target_stats": {"gap": [6800.0, 1300.0], "mu": [2.7, 1.5]},
                                                "step": 0, "history": []})  # fmt: skip
    conf = smiles_to_3d("CO")
    heavy = conf.atomic_numbers != 1
    write_sdf(root / "frag.sdf", MolSet(conf.atomic_numbers[heavy], conf.positions[heavy], ptr=[0, int(heavy.sum())]))
    (root / "frag.xyz").write_text("1\n\nC 0 0 0\n")
    return {"uncond": _model(root / "uncond.pt"), "cond": _model(root / "cond.pt", ("gap", "mu")),
            "cond_subset": _model(root / "cond_subset.pt", ("gap", "mu"), "train.cond_property_drop_prob=0.5"),
            "predictor": root / "predictor.pt", "predictor_qm9": root / "predictor_qm9.pt", "frag": root / "frag.sdf", "xyz": root / "frag.xyz",
            "frag_pos": conf.positions[heavy]}  # fmt: skip


def _run(tmp_path, model, *args):
    out = tmp_path / "out.sdf"
    code = main(["sample", "-n", "3", "--steps", "3", "--model", str(model), "-o", str(out), "--no-novelty",
                 "--json", *args])  # fmt: skip
    return code, out


def test_scaffold_from_sdf_is_kept_and_reported(files, tmp_path):
    code, out = _run(tmp_path, files["uncond"], "--scaffold", str(files["frag"]), "--n-atoms", "7", "--jump", "2",
                     "--resample", "2")  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert {"has_scaffold", "scaffold_exact"} <= set(frame.columns)
    mols, _ = read_sdf(out)
    for i in range(len(mols)):
        z, pos = mols.molecule(i)
        assert len(z) == 7 and z[:2].tolist() == [6, 8]
        np.testing.assert_allclose(pos[:2], files["frag_pos"], atol=1e-3)  # SDF keeps 4 decimals
    record = json.loads(out.with_suffix(".run.json").read_text())
    assert record["guidance"]["scaffold"]["atoms"] == 2
    assert record["guidance"]["scaffold"]["reconstruction"] == defaults.RECONSTRUCTION


def test_closed_shell_reading_never_changes_the_scaffold(files, tmp_path):
    code, out = _run(tmp_path, files["uncond"], "--scaffold", str(files["frag"]), "--n-atoms", "7",
                     "--types", "closed-shell", "-n", "8")  # fmt: skip
    assert code == 0
    mols, _ = read_sdf(out)
    for i in range(len(mols)):
        z, _ = mols.molecule(i)
        assert z[:2].tolist() == [6, 8] and int(z.sum()) % 2 == 0


def test_targets_of_a_conditional_model(files, tmp_path):
    code, out = _run(tmp_path, files["cond"], "--target", "gap=4.5eV", "--target", "mu=0.5 e*bohr",
                     "--guidance-scale", "2")  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert np.allclose(frame["target_gap"], 4500.0) and np.allclose(frame["target_mu"], 0.5 * 2.541746473)
    assert json.loads(out.with_suffix(".run.json").read_text())["nfe"] == 6  # two calls per step
    assert _run(tmp_path, files["cond"])[0] == 0  # no target: the model's unconditional mode


def test_a_model_trained_on_property_subsets_takes_any_subset_of_targets(files, tmp_path):
    from moldiff.guidance.plan import GuidanceSpec, plan_guidance
    from moldiff.models import load_generator

    code, out = _run(tmp_path, files["cond_subset"], "--target", "gap=4.5eV")
    assert code == 0
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert np.allclose(frame["target_gap"], 4500.0) and "target_mu" not in frame
    gen, config, payload = load_generator(str(files["cond_subset"]))
    plan = plan_guidance(gen, config, payload, GuidanceSpec(targets={"gap": 4500.0}))
    # gap given (normalised with mean 6000, std 1000, flag 1); mu absent (0, flag 0)
    torch.testing.assert_close(plan.conditions(2), torch.tensor([[-1.5, 0.0, 1.0, 0.0]] * 2))


def test_regressor_guidance_columns(files, tmp_path):
    code, out = _run(tmp_path, files["uncond"], "--guide", "qed=max", "--guide", "logp=1.5:0.5", "--predictor",
                     str(files["predictor"]), "--guide-scale", "0.5")  # fmt: skip
    assert code == 0
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert {"predicted_qed", "predicted_logp", "qed", "logp"} <= set(frame.columns)
    record = json.loads(out.with_suffix(".run.json").read_text())["guidance"]
    assert record["guides"][1] == {"name": "logp", "target": 1.5, "direction": 0, "weight": 0.5}


@pytest.mark.parametrize("model, args, needle", [
    ("cond", ["--target", "foo=1"], "unknown property 'foo'"),
    ("cond", ["--target", "gap=4.5parsec"], "unit 'parsec' does not fit property 'gap'"),
    ("cond", ["--target", "gap"], "NAME=VALUE"),
    ("cond", ["--target", "gap=4.5eV"], "together: give a target for each"),
    ("uncond", ["--target", "gap=4.5eV"], "not conditional"),
    ("uncond", ["--guidance-scale", "2"], "key 'guidance': guidance_scale needs targets"),
    ("uncond", ["--guide", "qed=max"], "key 'guidance': guide needs predictor"),
    ("uncond", ["--guide", "qed=max", "--predictor", "missing.pt"], "no predictor file"),
    ("uncond", ["--guide", "gap=max", "--predictor", "{predictor}"], "predicts qed, logp, not gap"),
    ("uncond", ["--predictor", "{predictor}"], "only with --guide"),
    ("uncond", ["--steer", "qed=max", "--predictor", "{predictor}"], "only with --guide"),
    ("uncond", ["--steer", "gap=6eV"], "key 'steer': rewards gap need predictor"),
    ("uncond", ["--steer", "mu=2", "--predictor", "{predictor}"], "predicts qed, logp, not mu"),
    ("uncond", ["--scaffold", "missing.sdf"], "no such file"),
    ("uncond", ["--scaffold", "{xyz}"], "must be an SDF"),
    ("uncond", ["--scaffold", "{frag}", "--n-atoms", "2"], "must exceed"),
    ("uncond", ["--scaffold", "{frag}", "--jump", "0"], "--jump"),
    ("uncond", ["--scaffold", "{frag}", "--reconstruction", "-1"], "--reconstruction: expected a number >= 0 (got -1.0)"),
    ("uncond", ["--scaffold-smiles", "C1CC"], "unparsable SMILES"),
    ("uncond", ["--scaffold-smiles", "C[Si](C)C"], "does not fit this model"),
    ("uncond", ["--scaffold", "{frag}", "--scaffold-smiles", "CO"], "not both"),
])  # fmt: skip
def test_bad_guidance_input_is_one_line(files, tmp_path, capsys, monkeypatch, model, args, needle):
    monkeypatch.chdir(tmp_path)
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    code, _ = _run(tmp_path, files[model], *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    assert needle in err, err


def test_steering_from_the_command_line_records_its_settings_and_rejects_bad_ones(files, tmp_path, capsys):
    code, out = _run(tmp_path, files["uncond"], "--steer", "qed=max", "--particles", "3", "--resamplings", "1",
                     "--steer-select", "sample")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    record = json.loads(out.with_suffix(".run.json").read_text())
    steer = record["guidance"]["steer"]
    assert steer["particles"] == 3 and steer["select"] == "sample" and steer["rewards"][0]["name"] == "qed"
    mols, _ = read_sdf(out)
    assert len(mols) == 3
    capsys.readouterr()
    for bad in (["--steer", "gap=max"], ["--steer", "qed=max", "--particles", "0"], ["--steer", "valid", "--steer", "qed=max"],
                ["--steer", "qed=max", "--steer-select", "top"], ["--steer", "valid", "--steer-reader", "obabel"]):  # fmt: skip
        code, _ = _run(tmp_path, files["uncond"], *bad)
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error:") and "\n" not in err, (bad, err)


def test_steering_by_a_predicted_property_records_and_reports_it(files, tmp_path, capsys):
    # RDKit cannot compute the gap: the predictor reads it, and QED is still RDKit's
    code, out = _run(tmp_path, files["uncond"], "--steer", "gap=6.5eV", "--steer", "qed=max",
                     "--predictor", str(files["predictor_qm9"]), "--particles", "2")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert "predicted_gap" in frame.columns and np.isfinite(frame["predicted_gap"]).all()
    record = json.loads(out.with_suffix(".run.json").read_text())["guidance"]
    assert record["predictor"] == str(files["predictor_qm9"]) and record["guides"] is None
    assert [r["name"] for r in record["steer"]["rewards"]] == ["gap", "qed"]
    assert record["steer"]["rewards"][0]["target"] == pytest.approx(6500.0)
    # each molecule costs its particles' network calls: 2 x 3 steps, whatever the batching
    assert json.loads(out.with_suffix(".run.json").read_text())["nfe"] == 6


def test_the_builtin_scaffold_model_keeps_a_scaffold_and_steers_for_it_intact(tmp_path, capsys):
    code, out = _run(tmp_path, "qm9-scaffold", "--scaffold-smiles", "c1ccoc1", "--steer", "valid", "--steer-reader",
                     "xyz2mol", "--particles", "2")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert frame["has_scaffold"].all() and len(frame) == 3 and "scaffold_intact" in frame
    guidance = json.loads(out.with_suffix(".run.json").read_text())["guidance"]
    assert guidance["scaffold"]["known_atoms"] and guidance["scaffold"]["open_valence"] == [1, 1, 1, 0, 1]
    assert guidance["steer"]["reader"] == "xyz2mol" and guidance["steer"]["scaffold_bonus"] == 1.0


def test_the_builtin_drug_scaffold_model_grows_a_benzamide_on_its_nitrogen(tmp_path, capsys):
    code, out = _run(tmp_path, "drugs-scaffold", "--scaffold-smiles", "*NC(=O)c1ccccc1", "--types", "closed-shell")
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert frame["has_scaffold"].all() and len(frame) == 3
    scaffold = json.loads(out.with_suffix(".run.json").read_text())["guidance"]["scaffold"]
    assert scaffold["known_atoms"] and scaffold["atoms"] == 15  # 9 heavy atoms and the 6 kept hydrogens
    assert scaffold["open_valence"] == [1] + [0] * 14  # only the nitrogen (first) has an open valence: its *


def test_an_intact_scaffold_is_read_from_the_smiles_with_its_bond_orders():
    from moldiff.guidance.plan import GuidanceSpec, plan_guidance
    from moldiff.models import load_generator

    gen, config, payload = load_generator("qm9-scaffold")
    plan = plan_guidance(gen, config, payload, GuidanceSpec(scaffold_smiles="c1ccncc1"))
    # substituted pyridine, the saturated ring, unreadable (None, NaN from a CSV)
    assert plan.scaffold_intact(["Cc1ccncc1", "CC1CCNCC1", None, float("nan")]) == [True, False, False, False]
