"""Checkpoints: plain dicts of tensors and Python values, written atomically and loaded with
``torch.load(weights_only=True)`` so a file from a stranger cannot run code.

Two kinds share one format (``kind``): a training state (model, EMA, optimiser, counters, RNG)
from which ``--resume`` continues exactly, and a model (EMA weights only) that ``sample`` uses.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import torch

from moldiff.errors import MoldiffError
from moldiff.paths import atomic_write_bytes

FORMAT = 1
TRAINING_STATE = "moldiff-training-state"
MODEL = "moldiff-model"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_failure(exc: Exception) -> str:
    """torch's reason in a few words: its safe unpickler wraps the cause in paragraphs of advice
    (which tell the user to disable the very check that protects them)."""
    text = str(exc).strip()
    cause = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please|\n|$)", text)
    if cause:
        return f"refused by the safe loader: {cause.group(1).strip()}"
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def load_checkpoint(path: str | Path, kinds: tuple[str, ...] = (TRAINING_STATE, MODEL)) -> dict:
    """Load safely; a missing, corrupt or wrong-kind file is a one-line MoldiffError."""
    path = Path(path)
    if not path.is_file():
        raise MoldiffError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, foreign objects refused by weights_only
        raise MoldiffError(f"{path} is not a loadable moldiff checkpoint ({_load_failure(exc)})") from None
    if not isinstance(payload, dict) or payload.get("kind") not in kinds:
        got = payload.get("kind") if isinstance(payload, dict) else type(payload).__name__
        raise MoldiffError(f"{path} is a checkpoint of kind {got!r}; expected one of {list(kinds)}")
    if payload.get("format") != FORMAT:
        raise MoldiffError(f"{path} has checkpoint format {payload.get('format')}, this moldiff reads {FORMAT}")
    return payload
