"""Mixed precision for the networks: matrix products in bfloat16, everything that accumulates in
the input's own precision.

Nearly all of a network call is the per-edge H×H products of the EGNN layers. On a CPU with
native bfloat16 dot products (AVX512-BF16 or AMX) they run several times faster in bfloat16
than in float32, and on recent GPUs likewise. bfloat16 keeps float32's range with an 8-bit
mantissa (relative rounding 2⁻⁹ ≈ 0.2 %), far below a trained denoiser's own error, but it
cannot hold coordinates: 5 Å rounds to steps of 0.03 Å, and the network's output is a small
difference of positions. So under ``bf16`` only the message-passing layers' linear maps (and the
element-wise work on their outputs) run in bfloat16; the input embedding, the output heads, the
residual feature stream, every sum over neighbours and every coordinate stay in float32. Float64
inputs (the likelihood's) are left alone by autocast: they run in float64 either way.

``fp32`` (the default) runs everything in the input's precision: results are bit-for-bit those
of a network that knows nothing of this module. ``auto`` picks ``bf16`` where it is native
(:func:`bf16_native`), else ``fp32``.
"""

from __future__ import annotations

import contextlib

import torch

from moldiff.errors import MoldiffError

PRECISIONS = ("fp32", "bf16", "auto")


def bf16_native(device: str | torch.device = "cpu") -> bool:
    """Whether bfloat16 matrix products run natively on ``device`` (not emulated, hence faster)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return False
    # AVX512-BF16 or AMX; oneDNN also runs bfloat16 on plain AVX512 but by conversion, no faster
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(check()) for check in checks if check is not None)


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """``fp32`` or ``bf16`` for a requested precision on ``device``; unknown names are an error."""
    if precision not in PRECISIONS:
        raise MoldiffError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    return precision


def set_precision(module: torch.nn.Module, precision: str) -> torch.nn.Module:
    """Sets ``precision`` (``fp32`` or ``bf16``) on every network inside ``module`` that has one."""
    if precision not in ("fp32", "bf16"):
        raise MoldiffError(f"set_precision takes fp32 or bf16 (resolve 'auto' first), got {precision!r}")
    for sub in module.modules():
        if hasattr(sub, "precision"):
            sub.precision = precision
    return module


def denoiser_networks(denoiser) -> list[torch.nn.Module]:
    """The networks under a denoiser and any guidance wrappers: a diffusion model's ``net`` or a
    flow map's ``model``."""
    while hasattr(denoiser, "inner"):  # guidance wrappers
        denoiser = denoiser.inner
    return [net for net in (getattr(denoiser, "net", None), getattr(denoiser, "model", None)) if net is not None]


def matmuls_in(precision: str, device_type: str):
    """The context a network runs its layers in: bfloat16 autocast under ``bf16``, else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


__all__ = ["PRECISIONS", "bf16_native", "denoiser_networks", "matmuls_in", "resolve_precision", "set_precision"]
