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


# The backbone's atom-type columns: input features open the first layer, predictions leave the last.
TYPE_INPUT_KEYS = ("embed.weight",)
TYPE_OUTPUT_KEYS = ("out.1.weight", "out.1.bias")


def remap_elements(state: dict[str, torch.Tensor], source: list[str], target: list[str]) -> dict[str, torch.Tensor]:
    """``state`` of a network over the ``source`` element vocabulary, rearranged for ``target``.

    Each target element shared with the source takes the source's input column and output row;
    a new element starts at zero in both (the network first treats it as an unknown type and learns
    it from the data). Columns after the types (time, condition) keep their order. This is what
    lets a QM9 model warm-start a drug-like model whose vocabulary adds S, Cl and Br.
    """
    if list(source) == list(target):
        return state
    index = {e: i for i, e in enumerate(source)}
    state = dict(state)
    for key in TYPE_INPUT_KEYS:
        w = state[key]
        cols = [w[:, index[e]] if e in index else torch.zeros_like(w[:, 0]) for e in target]
        state[key] = torch.cat([torch.stack(cols, 1), w[:, len(source) :]], 1)
    for key in TYPE_OUTPUT_KEYS:
        w = state[key]
        state[key] = torch.stack([w[index[e]] if e in index else torch.zeros_like(w[0]) for e in target])
    return state
