"""Training with conditions (classifier-free guidance) and training property predictors, tiny."""

import numpy as np
import pytest
import torch

from moldiff.cli.main import main
from moldiff.config import load_config
from moldiff.data.qm9 import load_qm9
from moldiff.models import load_generator
from moldiff.property_model import load_property_model
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.data import training_half
from moldiff.train.loop import Trainer, train

TINY = ["data.max_train=48", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=8", "tracking.enabled=false",
        "train.threads=1", "train.max_steps=3"]  # fmt: skip


def test_conditional_training_stores_normalisation_and_samples_with_a_target(tmp_path, capsys):
    cfg = load_config(None, TINY + [f"out_dir={tmp_path}", "data.properties=[gap, mu]", "train.cond_drop_prob=0.5"])
    train(cfg, log=lambda m: None)
    payload = load_checkpoint(tmp_path / "model.pt")
    gap = load_qm9("train").properties["gap"][:48]
    assert payload["property_stats"]["gap"] == pytest.approx([gap.mean(), gap.std()])
    assert load_checkpoint(tmp_path / "last.pt")["property_stats"] == payload["property_stats"]
    gen, _, _ = load_generator(str(tmp_path / "model.pt"))
    assert gen.denoiser.net.cond_features == 4  # two properties, each with its "present" flag
    out = tmp_path / "s.sdf"
    code = main(["sample", "-n", "2", "--steps", "2", "--model", str(tmp_path / "model.pt"), "-o", str(out),
                 "--target", "gap=0.25Ha", "--target", "mu=2D", "--guidance-scale", "3", "--no-novelty", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    # the likelihood of a conditional model is that of each molecule given its own properties
    assert main(["nll", "--model", str(tmp_path / "model.pt"), "-n", "2", "--method", "elbo", "--json"]) == 0


def test_conditions_are_dropped_with_the_configured_probability(tmp_path):
    cfg = load_config(None, TINY + [f"out_dir={tmp_path}", "data.properties=[alpha]", "train.cond_drop_prob=0.3"])
    trainer = Trainer(cfg, log=lambda m: None)
    from moldiff.diffusion.state import MolGraph

    raw = torch.full((2000, 1), 70.0)
    cond = trainer.condition(MolGraph.from_counts(torch.ones(2000, dtype=torch.long), cond=raw), 0.3).cond
    flag = cond[:, 1]
    assert set(flag.unique().tolist()) == {0.0, 1.0} and abs(1 - flag.mean().item() - 0.3) < 0.04
    assert torch.all(cond[flag == 0, 0] == 0)  # a dropped condition is the zero vector
    norm = trainer.cond_norm
    assert torch.allclose(cond[flag == 1, 0], torch.tensor((70.0 - norm.mean[0]) / norm.std[0]))


def test_properties_of_a_joint_model_are_dropped_one_by_one(tmp_path):
    cfg = load_config(None, TINY + [f"out_dir={tmp_path}", "data.properties=[alpha, gap]", "train.cond_drop_prob=0.2",
                                    "train.cond_property_drop_prob=0.5"])  # fmt: skip
    trainer = Trainer(cfg, log=lambda m: None)
    from moldiff.diffusion.state import MolGraph

    raw = torch.tensor([[70.0, 6000.0]]).repeat(4000, 1)
    cond = trainer.condition(MolGraph.from_counts(torch.ones(4000, dtype=torch.long), cond=raw), 0.2, 0.5).cond
    flags = cond[:, 2:]
    patterns = {tuple(row) for row in flags.tolist()}
    assert patterns == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}  # every subset is trained
    assert abs(flags.mean().item() - 0.8 * 0.5) < 0.03
    assert torch.all(cond[:, :2][flags == 0] == 0)


def test_halves_split_the_training_set():
    data = load_qm9("train").subset(slice(0, 10))
    first, second = training_half(data, "first"), training_half(data, "second")
    assert len(first) == len(second) == 5 and not set(first.ids) & set(second.ids)


def test_train_predictor_command_and_loading(tmp_path, capsys):
    args = ["train-predictor", "--set", f"out_dir={tmp_path}", "--set", "targets=[gap, qed]"]
    for s in ["data.max_train=32", "model.hidden=8", "model.layers=1", "train.batch_size=8", "train.max_steps=3",
              "train.val_molecules=8", "train.threads=1", "train.log_every=1", "train.eval_every=2"]:
        args += ["--set", s]
    assert main(args) == 0, capsys.readouterr().err
    model = load_property_model(tmp_path / "predictor.pt")
    assert model.names == ("gap", "qed") and model.noisy
    pred = model.predict(load_qm9("valid").subset(slice(0, 4)))
    assert pred["gap"].shape == (4,) and np.isfinite(pred["qed"]).all()
    assert "val_mae_gap" in (tmp_path / "metrics.jsonl").read_text()


def test_train_predictor_bad_target_is_one_line(tmp_path, capsys):
    code = main(["train-predictor", "--set", f"out_dir={tmp_path}", "--set", "targets=[potency]",
                 "--set", "data.max_train=8"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "potency" in err and "\n" not in err


def test_a_resumed_predictor_run_matches_an_uninterrupted_one(tmp_path, capsys):
    from moldiff.config import PredictorConfig
    from moldiff.train.predictor import train_predictor

    tiny = ["targets=[gap]", "data.max_train=32", "model.hidden=8", "model.layers=1", "train.batch_size=8",
            "train.val_molecules=8", "train.threads=1", "train.log_every=1", "train.eval_every=100",
            "train.checkpoint_every=2"]  # fmt: skip
    whole = load_config(None, tiny + [f"out_dir={tmp_path / 'whole'}", "train.max_steps=6"], PredictorConfig)
    train_predictor(whole, log=lambda m: None)
    half = load_config(None, tiny + [f"out_dir={tmp_path / 'split'}", "train.max_steps=3"], PredictorConfig)
    train_predictor(half, log=lambda m: None)  # the state is saved at steps 2 and 3 (the end)
    rest = load_config(None, tiny + [f"out_dir={tmp_path / 'split'}", "train.max_steps=6"], PredictorConfig)
    train_predictor(rest, log=lambda m: None, resume=True)
    a = load_checkpoint(tmp_path / "whole" / "predictor.pt", ("moldiff-predictor",))
    b = load_checkpoint(tmp_path / "split" / "predictor.pt", ("moldiff-predictor",))
    assert a["step"] == b["step"] == 6
    for key, value in a["weights"].items():
        torch.testing.assert_close(b["weights"][key], value, rtol=0, atol=0)
    other = tiny[1:] + [f"out_dir={tmp_path / 'split'}", "targets=[mu]"]  # another target: no resuming
    assert main(["train-predictor", "--resume"] + [x for s in other for x in ("--set", s)]) == 2
    err = capsys.readouterr().err.strip()
    assert "another targets" in err and "\n" not in err
