"""A training goes on from a model file on a machine without its training state (`train.continues`
with --resume): step, data order, noise generator and learning curve carry on; a local training
state, where there is one, wins."""

from __future__ import annotations

import pytest
import torch

from moldiff.config import load_config
from moldiff.errors import MoldiffError
from moldiff.train.checkpoint import MODEL, load_checkpoint, save_checkpoint
from moldiff.train.loop import Trainer, train

TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=2", "train.eval_every=1000", "train.val_molecules=16", "tracking.enabled=false",
        "train.threads=1"]  # fmt: skip


def _run(tmp_path, name: str, steps: int, *extra: str, resume: bool = False) -> list[str]:
    messages: list[str] = []
    config = load_config(None, [*TINY, f"out_dir={tmp_path / name}", f"train.max_steps={steps}", *extra])
    train(config, resume=resume, log=messages.append)
    return messages


@pytest.fixture
def shipped(tmp_path):
    """A model file of 6 steps (8 batches per epoch), as a release ships it; its training state is gone."""
    _run(tmp_path, "origin", 6)
    (tmp_path / "origin" / "last.pt").unlink()
    return tmp_path / "origin" / "model.pt"


def test_the_model_file_records_the_training_position(shipped):
    payload = load_checkpoint(shipped, (MODEL,))
    assert "optimizer" not in payload and "model" not in payload
    assert (payload["step"], payload["epoch"], payload["cursor"]) == (6, 0, 6)
    assert isinstance(payload["noise_rng"], torch.Tensor) and payload["cpu_seconds"] > 0
    assert [row["step"] for row in payload["history"] if "loss" in row] == [2, 4, 6]


def test_a_fresh_machine_continues_the_shipped_training(shipped, tmp_path):
    log = _run(tmp_path, "fresh", 12, f"train.continues={shipped}", resume=True)
    assert any("continuing" in m and "step 6" in m and "optimizer moments restart" in m for m in log)
    state, origin = load_checkpoint(tmp_path / "fresh" / "last.pt"), load_checkpoint(shipped)
    _run(tmp_path, "straight", 12)
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert (state["step"], state["epoch"], state["cursor"]) == (straight["step"], straight["epoch"], straight["cursor"])
    losses = [row for row in state["history"] if "loss" in row]
    assert [row["step"] for row in losses] == [2, 4, 6, 8, 10, 12]
    assert losses[:3] == [row for row in origin["history"] if "loss" in row]  # the shipped curve, then the new rows
    assert [row["epoch"] for row in losses] == [row["epoch"] for row in straight["history"] if "loss" in row]
    assert state["cpu_seconds"] > origin["cpu_seconds"]


def test_the_continued_run_draws_the_batches_the_shipped_run_would_have_drawn(shipped, tmp_path):
    config = load_config(None, [*TINY, f"out_dir={tmp_path / 'fresh'}", f"train.continues={shipped}"])
    trainer = Trainer(config, resume=True, log=lambda m: None)
    origin = load_checkpoint(shipped)
    assert (trainer.step, trainer.epoch, trainer.cursor) == (6, 0, 6)
    assert torch.equal(trainer.noise_gen.get_state(), origin["noise_rng"])
    for k, v in origin["ema"].items():
        assert torch.equal(trainer.net.state_dict()[k], v) and torch.equal(trainer.ema.state_dict()[k], v), k


def test_a_local_training_state_wins_over_the_model_it_continues(shipped, tmp_path):
    _run(tmp_path, "local", 3)
    log = _run(tmp_path, "local", 5, f"train.continues={shipped}", resume=True)
    assert any(m.startswith("resumed from") for m in log) and not any("continuing" in m for m in log)
    state = load_checkpoint(tmp_path / "local" / "last.pt")
    assert state["step"] == 5 and [row["step"] for row in state["history"] if "loss" in row] == [2, 4]


def test_without_resume_the_continued_model_is_not_used(shipped, tmp_path):
    _run(tmp_path, "new", 2, f"train.continues={shipped}")
    assert load_checkpoint(tmp_path / "new" / "last.pt")["step"] == 2


def test_a_model_of_another_architecture_cannot_be_continued(shipped, tmp_path):
    with pytest.raises(MoldiffError, match="another model"):
        _run(tmp_path, "wide", 8, f"train.continues={shipped}", "model.hidden=32", resume=True)


def test_a_model_file_without_its_position_cannot_be_continued(shipped, tmp_path):
    payload = load_checkpoint(shipped)
    old = tmp_path / "old.pt"
    save_checkpoint(old, {k: v for k, v in payload.items() if k not in ("epoch", "cursor", "noise_rng", "format")})
    with pytest.raises(MoldiffError, match="--init instead"):
        _run(tmp_path, "fresh", 8, f"train.continues={old}", resume=True)


def test_fine_tuning_from_a_model_does_not_continue_its_training():
    from moldiff.train.finetune import finetune_config

    base = load_config(None, ["train.continues=qm9"]).model_dump()
    assert finetune_config(base, "series.sdf").train.continues is None


CONTINUED = {"qm9_graph_heavy": "qm9", "qm9_builtin": "qm9-edm", "flowmap_qm9": "qm9-fast", "drugs_builtin": "drugs",
             "qm9_valence": "qm9-scaffold", "drugs_scaffold": "drugs-scaffold"}  # fmt: skip


@pytest.mark.parametrize("config_name", sorted(CONTINUED))
def test_each_shipped_training_config_continues_its_built_in_model(config_name):
    from moldiff.config import FlowMapRunConfig, find_config, is_flowmap_config
    from moldiff.models import resolve_model
    from moldiff.train.continuation import check_continuable

    path = find_config(config_name)
    config = load_config(path, schema=FlowMapRunConfig if is_flowmap_config(path) else None)
    assert config.train.continues == CONTINUED[config_name]
    payload = load_checkpoint(resolve_model(config.train.continues), (MODEL,))
    check_continuable(payload, config, config.train.continues)
    assert payload["history"] and payload["history"][-1]["step"] <= payload["step"]


def test_a_fresh_machine_continues_the_built_in_qm9_edm(tmp_path, capsys):
    from moldiff.cli.main import main
    from moldiff.models import BUILTIN

    shipped = load_checkpoint(BUILTIN["qm9-edm"])
    step = shipped["step"] + 1
    code = main(["train", "--config", "qm9_builtin", "--resume", "--no-track", "--set", f"out_dir={tmp_path}",
                 "--set", f"train.max_steps={step}", "--set", "train.log_every=1", "--set", "train.threads=1"])
    out = capsys.readouterr().out
    assert code == 0 and f"continuing qm9-edm from step {shipped['step']}" in out and "optimizer moments restart" in out
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == step and state["history"][: len(shipped["history"])] == shipped["history"]
    assert state["history"][-1]["step"] == step and state["history"][-1]["epoch"] > shipped["history"][-1]["epoch"]


def test_a_training_state_exports_the_model_file_the_trainer_writes(tmp_path):
    from moldiff.train.continuation import model_file_of

    _run(tmp_path, "run", 4)
    exported, written = model_file_of(load_checkpoint(tmp_path / "run" / "last.pt")), load_checkpoint(tmp_path / "run" / "model.pt")
    assert set(exported) == set(written) - {"format"}
    assert all(torch.equal(exported["ema"][k], v) for k, v in written["ema"].items())
    assert (exported["step"], exported["epoch"], exported["cursor"]) == (written["step"], written["epoch"], written["cursor"])
