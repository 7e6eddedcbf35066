"""MLflow tracking, imported lazily (``import mlflow`` costs about two seconds).

The tracking URI is always explicit: ``--tracking-uri`` beats ``$MLFLOW_TRACKING_URI``, which
beats the config's ``tracking.uri``, which defaults to ``sqlite:///mlflow.db`` in the working
directory (artifacts in ``./mlartifacts``). Open it with
``mlflow ui --backend-store-uri sqlite:///mlflow.db``.

A server that cannot be reached at start is a MoldiffError before any work is done. If it goes
away mid-run, the run carries on (checkpoints and outputs are local) and says so once.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from moldiff.errors import MoldiffError

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(cli_uri: str | None = None, config_uri: str | None = None) -> str:
    return cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or config_uri or DEFAULT_URI


def flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"train.lr": "0.0005", ...} for MLflow params."""
    out: dict[str, str] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out


class Tracker:
    """One MLflow run. Metrics are buffered and sent in batches."""

    def __init__(self, uri: str, experiment: str, run_name: str, *, flush_every: int = 50) -> None:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        import logging

        import mlflow
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no database-migration chatter

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        try:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None:
                location = None
                if uri.startswith("sqlite:///"):
                    db = Path(uri[len("sqlite:///"):]).resolve()
                    location = (db.parent / "mlartifacts").as_uri()
                exp_id = self.client.create_experiment(experiment, artifact_location=location)
            else:
                exp_id = exp.experiment_id
            self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
        except Exception as exc:
            raise MoldiffError(f"MLflow tracking at {uri} cannot be used: {_one_line(exc)}") from None
        self._mlflow = mlflow
        self._buffer: list = []
        self._flush_every = flush_every
        self._broken = False

    # -------------------------------------------------------------- logging
    def _guard(self, what: str, fn, *args, **kwargs) -> None:
        if self._broken:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # the server went away: keep working, say it once
            self._broken = True
            print(f"warning: MLflow tracking stopped ({what}: {_one_line(exc)}); "
                  "the run continues and its files stay on disk", file=sys.stderr)  # fmt: skip

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self._guard("params", self.client.log_batch, self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict, step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer += [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            chunk, self._buffer = self._buffer[:1000], self._buffer[1000:]
            self._guard("metrics", self.client.log_batch, self.run_id, metrics=chunk)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        if Path(path).exists():
            self._guard("artifact", self.client.log_artifact, self.run_id, str(path), folder)

    def log_dict(self, data: dict, name: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / name
            p.write_text(json.dumps(data, indent=2, default=str))
            self.log_artifact(p)

    def set_tags(self, tags: dict) -> None:
        for k, v in tags.items():
            self._guard("tags", self.client.set_tag, self.run_id, k, str(v))

    def end(self, status: str = "FINISHED") -> None:
        self.flush()
        self._guard("end", self.client.set_terminated, self.run_id, status)


def check_reachable(uri: str) -> None:
    """Fail fast (one line) when an http(s) tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
            resp.read()
    except Exception as exc:
        raise MoldiffError(f"MLflow tracking server {uri} cannot be reached ({_one_line(exc)})") from None


def start(uri: str, experiment: str, run_name: str) -> Tracker:
    check_reachable(uri)
    return Tracker(uri, experiment, run_name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
