import os

import pytest
import torch

# Keep tests light on the 2-core machines: one intra-op thread per test process.
torch.set_num_threads(int(os.environ.get("MOLDIFF_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _isolated_tracking(tmp_path, monkeypatch):
    # Tests never write an mlflow.db into the working directory.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
