"""A training run's params, metrics and artifacts arrive at a real MLflow tracking server."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from moldiff.cli.main import main

TINY = ["data.max_train=32", "model.hidden=8", "model.layers=1", "train.batch_size=8", "train.max_steps=6",
        "train.log_every=2", "train.eval_every=1000", "train.val_molecules=8", "train.threads=1"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root}/server.db", "--default-artifact-root", str(root / "artifacts"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 120 s")
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def _sets(items):
    return [x for s in items for x in ("--set", s)]


def test_training_run_reaches_server(server, tmp_path):
    from mlflow.tracking import MlflowClient

    code = main(["train", "--tracking-uri", server, *_sets(TINY + [f"out_dir={tmp_path}/run", "name=server-test"])])
    assert code == 0
    client = MlflowClient(tracking_uri=server)
    exp = client.get_experiment_by_name("moldiff")
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.run_name = 'server-test'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["train.max_steps"] == "6" and run.data.params["model.hidden"] == "8"
    assert "loss" in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [2, 4, 6]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.pt", "metrics.jsonl", "run.json"} <= artifacts


def test_unreachable_server_fails_before_work(tmp_path, capsys):
    code = main(["train", "--tracking-uri", f"http://127.0.0.1:{_free_port()}",
                 *_sets(TINY + [f"out_dir={tmp_path}/run"])])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: MLflow tracking server") and "\n" not in err
    assert not (tmp_path / "run/last.pt").exists()


def test_tracking_loss_mid_run_keeps_training(tmp_path, capsys, monkeypatch):
    """If the tracking backend fails mid-run, training finishes and its checkpoint is on disk."""
    from moldiff import track
    from moldiff.config import load_config
    from moldiff.train.loop import train

    tracker = track.start(f"sqlite:///{tmp_path}/t.db", "moldiff", "flaky")
    calls = {"n": 0}
    real = tracker.client.log_batch

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise ConnectionError("server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(tracker.client, "log_batch", flaky)
    tracker._flush_every = 1
    cfg = load_config(None, TINY + [f"out_dir={tmp_path}/run", "tracking.enabled=false"])
    train(cfg, tracker=tracker, log=lambda m: None)
    tracker.end()
    err = capsys.readouterr().err
    assert err.count("MLflow tracking stopped") == 1
    assert (tmp_path / "run/last.pt").exists() and (tmp_path / "run/model.pt").exists()
