"""Distribution-matching distillation of a flow map (Yin et al. 2024, "One-step diffusion with
distribution matching distillation"; Yin et al. 2024b, DMD2).

Why: an ODE distillation (``teacher-ode``, ``lagrangian``) can at best reproduce the teacher's
probability-flow ODE, and the built-in teacher's ODE is far worse than its SDE
(``bench/results/solvers.json``: 7.5 % molecule stability for DPM-Solver++(2M) at 100 calls against
47.5 % for its SDE variant). DMD instead matches the *distribution* of the flow map's samples to the
teacher's, whatever path the ODE takes.

The generator is the jump to the data, x = G(z_s, s, 0), from z_s = α_s x_data + σ_s ε at a start
s of the 1/2/4/8-jump grids (s = 1: from noise, as a one-call sampler starts). Its samples are
noised to a random level τ, x_τ = α_τ x + σ_τ ε', and KL(p_G,τ ‖ p_teacher,τ) has the gradient

    ∇_θ KL = E[ w (s_fake(x_τ, τ) − s_real(x_τ, τ)) ∂x/∂θ ],

s_real the teacher's score and s_fake the score of the generator's own samples, learned online by
a second diffusion model (:class:`SampleScore`, started from the teacher) with the teacher's own
denoising loss on sg[x]. With s = −(x_τ − α x̂)/σ², s_fake − s_real = α (x̂_fake − x̂_real)/σ², and
DMD's weight w = σ²/α / mean|x − x̂_real| (per molecule) leaves

    g = (x̂_fake − x̂_real) / mean|x − x̂_real|,     L_G = ½ ‖x − sg[x − g]‖²,

a loss whose gradient with respect to x is exactly g. Sampling then jumps to the data from each
grid time and re-noises to the next (``sample_flow_map`` with γ = 1, as DMD2's multi-step
generator). Optional: ``regression`` λ adds λ × the ``teacher-ode`` loss (DMD's paired regression),
which anchors every jump to the teacher's ODE.
"""

from __future__ import annotations

import copy

import torch

from moldiff import rng
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.losses import _reduce, per_molecule_mean, training_loss
from moldiff.diffusion.state import MolGraph, project
from moldiff.flowmap.losses import grid_jumps, noised


class SampleScore:
    """The score of the flow map's own samples (DMD's "fake" diffusion model): a trainable copy of
    the teacher, fitted with the teacher's denoising loss (``diffusion``: its DiffusionConfig) to
    whatever the generator currently makes."""

    def __init__(self, teacher: Denoiser, diffusion, lr: float, grad_clip: float = 1.0) -> None:
        net = copy.deepcopy(teacher.net)
        for p in net.parameters():
            p.requires_grad_(True)
        net.train()
        self.denoiser = Denoiser(net, teacher.schedule, teacher.prediction)
        self.diffusion, self.grad_clip = diffusion, grad_clip
        self.opt = torch.optim.AdamW(net.parameters(), lr=lr, amsgrad=True)

    def fit(self, samples: torch.Tensor, graph: MolGraph, steps: int = 1, generator: torch.Generator | None = None) -> float:
        """``steps`` denoising updates on the generated clean states (N, 3 + F); the mean loss."""
        total = 0.0
        for _ in range(steps):
            loss = training_loss(self.denoiser, samples.detach(), graph, self.diffusion, generator=generator)["loss"]
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.denoiser.net.parameters(), self.grad_clip)
            if torch.isfinite(grad_norm):
                self.opt.step()
            total += float(loss.detach())
        return total / max(steps, 1)

    def state_dict(self) -> dict:
        return {"net": self.denoiser.net.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.denoiser.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["optimizer"])


def grid_starts(num: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B,) start times s = j/K of the K-jump uniform grids, K ∈ GRID_JUMPS, j = 1..K (s = 1 for
    about half the molecules: every sampler's first jump starts there)."""
    return grid_jumps(num, generator=generator, device=device)[0]


def distribution_matching_loss(model, z0: torch.Tensor, graph: MolGraph, schedule, *, teacher, fake: SampleScore,
                               tau_range: tuple[float, float] = (0.02, 0.98), type_weight: float = 1.0,
                               generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:  # fmt: skip
    """(the generator's losses {"loss", "loss_pos", "loss_type"}, its samples x (N, 3 + F) detached,
    for ``fake`` to fit). See the module docstring for the equations."""
    b, dtype = graph.num_graphs, z0.dtype
    s = grid_starts(b, generator, z0.device)
    z_s, _ = noised(z0, s, graph, schedule, generator)
    s = s.to(dtype)
    x = model(z_s, s, torch.zeros_like(s), graph)
    lo, hi = tau_range
    tau = (lo + (hi - lo) * rng.rand(b, generator=generator, device=z0.device)).to(dtype)
    alpha, sigma = (v.to(dtype)[graph.batch, None] for v in schedule(tau)[:2])
    eps = project(rng.randn(x.shape, generator=generator, device=x.device, dtype=dtype), graph)
    with torch.no_grad():
        x_tau = alpha * x.detach() + sigma * eps
        real = teacher.x0(x_tau, tau, graph)
        fake_x0 = fake.denoiser.x0(x_tau, tau, graph)
        scale = per_molecule_mean((x.detach() - real).abs().mean(1), graph).clamp(min=1e-4)
        g = (fake_x0 - real) / scale[graph.batch, None]
    err = (x - (x - g).detach()) ** 2
    losses = _reduce(0.5 * err, graph, type_weight)
    losses["dm_grad"] = per_molecule_mean((g**2).mean(1), graph).mean().detach()
    return losses, x.detach()


__all__ = ["SampleScore", "distribution_matching_loss", "grid_starts"]
