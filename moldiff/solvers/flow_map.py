"""Few-step sampling with a flow map G(z_s, s, t) (Boffi et al. 2024; Geng et al. 2025): K jumps
along a time grid 1 = t_0 > t_1 > … > t_K = 0, one network evaluation each,

    z_{t_{i+1}} = G(z_{t_i}, t_i, t_{i+1}),

optionally stochastic with γ-sampling (Kim et al. 2024, "Consistency trajectory models", §4.3)
written for any schedule x_t = α_t x_0 + σ_t ε: jump past t_{i+1} to the time r whose
noise-to-signal ratio is √(1 − γ²) times smaller, λ_r = λ_t − ½ log(1 − γ²), then re-noise forward
with the exact kernel of the path,

    z_t = (α_t / α_r) z_r + γ σ_t ε,     ε ~ N(0, I) CoM-free,

which keeps the marginal at time t. γ = 0 is the deterministic flow map; γ = 1 jumps to the data
end and re-noises fully (multistep consistency sampling). The last jump lands on t = 0 without
noise.

Given a Denoiser instead of a flow map, each jump is one Euler step (see
``moldiff.flowmap.sampler.EulerFlowMap``). Cost: K network evaluations for K jumps.
"""

from __future__ import annotations

import math

import torch

from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState
from moldiff.errors import MoldiffError
from moldiff.flowmap.sampler import as_flow_map
from moldiff.solvers._common import time_vector


def _renoise_time(schedule, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """r < t with σ_r/α_r = √(1 − γ²) σ_t/α_t (r = 0 when γ = 1)."""
    if gamma >= 1.0:
        return torch.zeros_like(t)
    lam = schedule.log_snr(t) - 0.5 * math.log(1 - gamma**2)
    return torch.minimum(schedule.t_from_log_snr(lam), t)


@torch.no_grad()
def sample_flow_map(model, z: MolState, times: torch.Tensor, graph: MolGraph, noise: MoleculeNoise,
                    callback=None, *, gamma: float = 0.0) -> MolState:  # fmt: skip
    """K flow-map jumps along ``times`` (K + 1,) from 1 to 0: z_1 -> z_0.

    ``model`` is a ``FlowMapSampler`` (or anything with ``jump``, ``schedule`` and ``nfe``) or a
    Denoiser; ``gamma`` ∈ [0, 1] is the re-noising strength between jumps.
    """
    if not 0.0 <= gamma <= 1.0:
        raise MoldiffError(f"flow-map: gamma must be in [0, 1], got {gamma}")
    flow = as_flow_map(model)
    for i in range(len(times) - 1):
        s, t = times[i], times[i + 1]
        last = i == len(times) - 2
        if gamma == 0.0 or last:
            # deterministic jump s -> t
            z = flow.jump(z, time_vector(s, z, graph), time_vector(t, z, graph), graph)
        else:
            # γ-sampling: jump s -> r ≤ t, then re-noise r -> t with the path's forward kernel
            r = _renoise_time(flow.schedule, t.double(), gamma)
            z = flow.jump(z, time_vector(s, z, graph), time_vector(r, z, graph), graph)
            a_t, s_t = (float(v) for v in flow.schedule(t.double())[:2])
            a_r = float(flow.schedule(r)[0])
            z = (a_t / a_r) * z + gamma * s_t * noise.randn().to(device=z.device, dtype=z.dtype)
        if callback is not None:
            callback(i, z)
    return z

