"""Samplers: each solves the reverse process from noise at t = 1 to data at t = 0 with one
signature, ``sample(denoiser, z, times, graph, noise, callback=None) -> z_0``, found by name.
"""

from moldiff.solvers.ddpm import sample_ddpm

SOLVERS = {"ddpm": sample_ddpm}


def get_solver(name: str):
    try:
        return SOLVERS[name]
    except KeyError:
        from moldiff.errors import MoldiffError

        raise MoldiffError(f"unknown solver {name!r}; choose from {', '.join(sorted(SOLVERS))}") from None


def uniform_times(steps: int) -> "torch.Tensor":  # noqa: F821
    """K + 1 times from 1 down to 0."""
    import torch

    return torch.linspace(1.0, 0.0, steps + 1)


__all__ = ["SOLVERS", "get_solver", "sample_ddpm", "uniform_times"]
