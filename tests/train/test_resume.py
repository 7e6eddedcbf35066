"""A killed training run resumes exactly where its last checkpoint left it."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from moldiff.config import load_config
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train

TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=16", "tracking.enabled=false",
        "train.threads=1"]  # fmt: skip


def _weights(path):
    return load_checkpoint(path)["model"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_equals_uninterrupted(tmp_path, precision):
    tiny = [*TINY, f"train.precision={precision}", "train.log_every=4"]
    full = load_config(None, tiny + [f"out_dir={tmp_path}/full", "train.max_steps=12"])
    train(full, log=lambda m: None)
    part = load_config(None, tiny + [f"out_dir={tmp_path}/part", "train.max_steps=5"])
    train(part, log=lambda m: None)
    rest = load_config(None, tiny + [f"out_dir={tmp_path}/part", "train.max_steps=12"])
    train(rest, resume=True, log=lambda m: None)
    a, b = _weights(tmp_path / "full/last.pt"), _weights(tmp_path / "part/last.pt")
    state = load_checkpoint(tmp_path / "part/last.pt")
    assert state["step"] == 12 and {row["precision"] for row in state["history"]} == {precision}
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_cpu_seconds_carry_over_a_resume(tmp_path):
    part = load_config(None, TINY + [f"out_dir={tmp_path}/run", "train.max_steps=4"])
    train(part, log=lambda m: None)
    before = load_checkpoint(tmp_path / "run/last.pt")["cpu_seconds"]
    rest = load_config(None, TINY + [f"out_dir={tmp_path}/run", "train.max_steps=8"])
    train(rest, resume=True, log=lambda m: None)
    assert load_checkpoint(tmp_path / "run/last.pt")["cpu_seconds"] > before > 0


def test_history_records_the_device_and_epochs_that_survive_a_batch_size_change(tmp_path):
    # 64 molecules: 8 batches of 8 per epoch, then 4 batches of 16
    part = load_config(None, TINY + [f"out_dir={tmp_path}/run", "train.max_steps=12", "train.log_every=4"])
    train(part, log=lambda m: None)
    rest = load_config(None, TINY + [f"out_dir={tmp_path}/run", "train.max_steps=14", "train.log_every=2",
                                     "train.batch_size=16"])  # fmt: skip
    train(rest, resume=True, log=lambda m: None)
    rows = [r for r in load_checkpoint(tmp_path / "run/last.pt")["history"] if "epoch" in r]
    assert all(r["device"] == "cpu" for r in rows)
    assert rows[-1]["step"] == 14 and rows[-1]["epoch"] == 2.0  # 12·8 + 2·16 = 128 molecules, not 14·16


def test_kill_then_resume_matches(tmp_path):
    args = [sys.executable, "-m", "moldiff", "train", "--no-track"]
    sets = [x for s in TINY + ["train.checkpoint_every=3", "train.max_steps=400"] for x in ("--set", s)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(args + sets + ["--set", f"out_dir={tmp_path}/killed"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    state = tmp_path / "killed/last.pt"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # no chance to save: only the periodic checkpoint survives
    proc.wait()
    step = load_checkpoint(state)["step"]
    assert 3 <= step < 400 and step % 3 == 0
    target = step + 6
    subprocess.run(args + sets + ["--set", f"out_dir={tmp_path}/killed", "--set", f"train.max_steps={target}",
                                  "--resume"], env=env, check=True, capture_output=True)  # fmt: skip
    train(load_config(None, TINY + [f"out_dir={tmp_path}/straight", f"train.max_steps={target}"]), log=lambda m: None)
    a, b = _weights(state), _weights(tmp_path / "straight/last.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_the_history_records_the_learning_rate_a_resume_changes(tmp_path):
    tiny = [*TINY, "train.log_every=2", "train.lr=1e-3", f"out_dir={tmp_path}/run"]
    train(load_config(None, tiny + ["train.max_steps=4"]), log=lambda m: None)
    train(load_config(None, tiny + ["train.max_steps=8", "train.lr=5e-4"]), resume=True, log=lambda m: None)
    rows = [row for row in load_checkpoint(tmp_path / "run/last.pt")["history"] if "loss" in row]
    assert [(row["step"], row["lr"]) for row in rows] == [(2, 1e-3), (4, 1e-3), (6, 5e-4), (8, 5e-4)]
