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
