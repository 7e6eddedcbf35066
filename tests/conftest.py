import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

# Keep tests light on the 2-core machines: one intra-op thread per test process.
torch.set_num_threads(int(os.environ.get("MOLDIFF_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _isolated_tracking(tmp_path, monkeypatch):
    # Tests never write an mlflow.db into the working directory.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")


@pytest.fixture(scope="session")
def load_bench():
    """Import a script of bench/ by name (bench/ is not a package), for tests of its functions."""
    bench = Path(__file__).resolve().parents[1] / "bench"

    def load(name: str):
        if str(bench) not in sys.path:  # a script imports its siblings as a run from bench/ would
            sys.path.insert(0, str(bench))
        spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


# A tiny QM9 graph model (data.graph: bonds and formal charges with the coordinates; H C N O F).
TINY_GRAPH = ["data.max_train=16", "model.hidden=16", "model.pair_hidden=8", "train.batch_size=4",
              "train.warmup_steps=2", "train.log_every=1000", "train.eval_every=1000", "train.checkpoint_every=1000",
              "train.val_molecules=8", "tracking.enabled=false", "train.threads=1", "train.max_steps=4"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_graph_settings() -> list[str]:
    """The ``--set`` overrides of the tiny graph model (on the ``tiny_graph`` config)."""
    return list(TINY_GRAPH)


@pytest.fixture(scope="session")
def tiny_graph_model(tmp_path_factory) -> Path:
    """The model file of :data:`TINY_GRAPH` (a few seconds to train)."""
    from moldiff.config import load_config
    from moldiff.train.loop import train

    out = tmp_path_factory.mktemp("tiny_graph")
    train(load_config("tiny_graph", [*TINY_GRAPH, f"out_dir={out}"]), log=lambda m: None)
    return out / "model.pt"
