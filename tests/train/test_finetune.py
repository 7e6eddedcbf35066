"""Fine-tuning on a chemical series: `moldiff train --init MODEL --data series.sdf` starts from the
model's weights and config, trains on the series with the fine-tuning defaults, and records it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from moldiff.cli.main import main
from moldiff.models import BUILTIN
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.finetune import FINETUNE_DEFAULTS

SERIES = Path(__file__).resolve().parents[2] / "moldiff" / "examples" / "benzamide_series.sdf"
DRUG_ELEMENTS = "data.elements=[H, C, N, O, F, S, Cl, Br]"


def _train(args, capsys):
    code = main(["train", "--no-track", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.fixture
def base_model(tmp_path, capsys):
    """A small model over the drug-like vocabulary, trained for a few steps on the series."""
    _train(["--data", str(SERIES), "--set", DRUG_ELEMENTS, "--set", "model.hidden=16", "--set", "model.layers=2",
            "--set", "train.max_steps=2", "--set", "train.eval_every=1000", "--set", f"out_dir={tmp_path / 'base'}"],
           capsys)  # fmt: skip
    return tmp_path / "base" / "model.pt"


def test_fine_tuning_starts_from_the_model_and_trains_on_the_series(base_model, tmp_path, capsys):
    out_dir = tmp_path / "ft"
    log = _train(["--init", str(base_model), "--data", str(SERIES), "--set", "train.max_steps=3",
                  "--set", f"out_dir={out_dir}"], capsys)  # fmt: skip
    assert "initialised" not in log or "vocabulary" not in log  # same vocabulary: no remapping
    record = json.loads((out_dir / "run.json").read_text())
    config = record["config"]
    assert config["data"]["dataset"] == str(SERIES) and config["model"]["hidden"] == 16
    assert config["train"]["lr"] == FINETUNE_DEFAULTS["train.lr"] and config["train"]["max_steps"] == 3
    before, after = load_checkpoint(base_model), load_checkpoint(out_dir / "model.pt")
    assert after["step"] == 3
    changed = [k for k in before["ema"] if not torch.equal(before["ema"][k], after["ema"][k])]
    assert changed, "fine-tuning left the weights as they were"
    # the fine-tuned model samples like any other
    assert main(["sample", "-n", "2", "--model", str(out_dir / "model.pt"), "--steps", "4",
                 "-o", str(tmp_path / "s.sdf")]) == 0  # fmt: skip
    assert (tmp_path / "s.sdf").exists()


def test_a_series_with_elements_the_model_lacks_is_a_clear_error(tmp_path, capsys):
    smi = tmp_path / "silanes.smi"
    smi.write_text("C[Si](C)(C)C\nCC[Si](C)(C)C\n")
    code = main(["train", "--no-track", "--init", "qm9", "--data", str(smi), "--set", f"out_dir={tmp_path / 'x'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no usable molecules" in err and "Si" in err


@pytest.mark.skipif(not BUILTIN["drugs"].exists(), reason="the built-in drugs model is not installed")
def test_the_documented_command_fine_tunes_the_builtin_drug_model(tmp_path, capsys):
    out_dir = tmp_path / "ft"
    _train(["--init", "drugs", "--data", str(SERIES), "--set", "train.max_steps=1", "--set", "train.batch_size=8",
            "--set", f"out_dir={out_dir}"], capsys)  # fmt: skip
    assert load_checkpoint(out_dir / "model.pt")["step"] == 1
