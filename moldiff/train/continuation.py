"""Continuing a training from a model file, on a machine that has no training state for it.

A training state (``OUT_DIR/last.pt``) holds everything an exact resume needs, optimizer moments
included, and stays on the machine that trains. A model file (EMA weights only, as the built-in
models are) also records where its training stood: the step (which also places the learning-rate
schedule), the epoch and batch cursor of the data order, the noise generator, the learning curve
and the CPU time spent. A config's ``train.continues`` names such a model, and
``moldiff train --resume`` goes on from it when ``OUT_DIR`` holds no training state, so the step
count, the data order and the learning curve carry on. The optimizer moments are not in the file
and restart.
"""

from __future__ import annotations

from moldiff.errors import MoldiffError
from moldiff.train.checkpoint import MODEL

# what a model file records of its training's progress, besides the weights
POSITION = ("epoch", "cursor", "noise_rng", "cpu_seconds")
# the sections of two configs that must agree for one run to continue the other's weights
MUST_AGREE = ("model", "diffusion", "data.elements", "data.properties", "flowmap.parameterization",
              "flowmap.alpha_floor")  # fmt: skip


def _lookup(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_continuable(payload: dict, config, source: str) -> None:
    """Raise a MoldiffError unless the model file ``payload`` (from ``source``) can be continued by
    a run of ``config``: the same kind of model, architecture, diffusion and atom vocabulary, and a
    recorded training position."""
    from moldiff.config import validate_config
    from moldiff.flowmap.generator import is_flowmap_payload

    if is_flowmap_payload(payload) != hasattr(config, "flowmap"):
        kind = "a flow map" if is_flowmap_payload(payload) else "a diffusion model"
        raise MoldiffError(f"train.continues: {source} is {kind}, which this run does not train")
    missing = [key for key in ("step", *POSITION) if key not in payload]
    if missing:
        raise MoldiffError(f"train.continues: {source} does not record its training position "
                           f"({', '.join(missing)}); start from its weights with --init instead")  # fmt: skip
    theirs = validate_config(payload["config"], type(config)).model_dump()
    ours = config.model_dump()
    differ = [key for key in MUST_AGREE if _lookup(theirs, key) != _lookup(ours, key)]
    if differ:
        raise MoldiffError(f"train.continues: {source} was trained with another {', '.join(differ)} than this "
                           "config; start from its weights with --init instead")  # fmt: skip


def model_file_of(state: dict) -> dict:
    """The model file of a training state: its EMA weights with what sampling and a continuation
    need, without the optimizer moments, the raw weights or any auxiliary network."""
    dropped = ("format", "kind", "model", "optimizer", "sample_score")
    return {k: v for k, v in state.items() if k not in dropped} | {"kind": MODEL}


__all__ = ["POSITION", "check_continuable", "model_file_of"]
