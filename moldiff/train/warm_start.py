"""Start a network from another model's weights (``moldiff train --init``), including a conditional
model from an unconditional one.

The backbone appends a conditional model's per-molecule condition to the input features of its
first layer, after the atom types and time, so the two networks differ only in that layer's extra
input columns. Those columns start at zero: the conditional network then computes exactly what the
unconditional one did, whatever the condition, and training teaches it to use the condition
(fine-tuning for classifier-free guidance instead of training from scratch).
"""

from __future__ import annotations

import torch

from moldiff.errors import MoldiffError


def warm_start(net: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "the init model") -> list[str]:
    """Load ``state`` into ``net``; 2-D weights with more input columns in ``net`` get the source's
    columns first and zeros after. Returns the names of the widened weights; any other mismatch
    (missing keys, other shapes) is a MoldiffError naming it."""
    target = net.state_dict()
    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or unexpected:
        names = ", ".join((missing + unexpected)[:3])
        raise MoldiffError(f"{source} does not fit this network (other architecture: {names} ...); "
                           f"check model.hidden, model.layers and data.elements")  # fmt: skip
    merged, widened = {}, []
    for key, mine in target.items():
        theirs = state[key]
        if theirs.shape == mine.shape:
            merged[key] = theirs
        elif mine.dim() == 2 and theirs.dim() == 2 and mine.shape[0] == theirs.shape[0] and mine.shape[1] > theirs.shape[1]:
            grown = torch.zeros_like(mine)
            grown[:, : theirs.shape[1]] = theirs
            merged[key], widened = grown, widened + [key]
        else:
            raise MoldiffError(f"{source} does not fit this network: {key} is {tuple(theirs.shape)} there, "
                               f"{tuple(mine.shape)} here")  # fmt: skip
    net.load_state_dict(merged)
    return widened
