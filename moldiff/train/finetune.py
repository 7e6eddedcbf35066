"""Fine-tuning a trained model on a chemical series: ``moldiff train --init drugs --data series.sdf``.

Without ``--config`` the run takes the init model's own config (architecture, element vocabulary,
diffusion), points it at the series and applies the fine-tuning defaults below: a smaller learning
rate than from scratch, so the model keeps what it knows, and a short run, since a series holds tens
to thousands of molecules rather than a training corpus. ``--set`` overrides any of it.
"""

from __future__ import annotations

import copy
from pathlib import Path

from moldiff.config import apply_overrides, validate_config

FINETUNE_DEFAULTS = {
    "train.lr": 1e-4,
    "train.warmup_steps": 50,
    "train.max_steps": 2000,
    "train.checkpoint_every": 100,
    "train.eval_every": 500,
    "train.eval_samples": 20,
    "train.eval_steps": 100,
    "train.val_molecules": 64,
}


def finetune_config(init_config: dict, data: str | None, overrides: list[str] = ()):
    """A RunConfig fine-tuning the model with config ``init_config`` on ``data``."""
    raw = copy.deepcopy(init_config)
    raw.pop("flowmap", None)
    stem = Path(data).stem if data else "run"
    raw["name"], raw["out_dir"] = f"finetune-{stem}", f"runs/finetune-{stem}"
    raw.setdefault("train", {}).pop("max_minutes", None)
    raw["train"]["threads"] = None
    raw["train"]["continues"] = None  # a new training on the series, not the init model's own
    defaults = [f"{key}={value}" for key, value in FINETUNE_DEFAULTS.items()]
    data_keys = [f"data.dataset={data}", "data.subset=null", "data.max_train=null", "data.half=null"] if data else []
    return validate_config(apply_overrides(raw, defaults + data_keys + list(overrides)))
