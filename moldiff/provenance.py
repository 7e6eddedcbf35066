"""What is saved beside every output: the resolved config, the seed and the software versions."""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from moldiff.paths import atomic_write_text


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("moldiff", "torch", "rdkit", "numpy", "pandas", "e3nn", "torch-geometric", "mlflow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run_record(config: dict, seed: int | None, **extra) -> dict:
    return {
        "command": " ".join(["moldiff", *sys.argv[1:]]),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "config": config,
        "versions": versions(),
        **extra,
    }


def write_run_record(path: str | Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")
