"""Distribution-matching distillation of a flow map (Yin et al. 2024, "One-step diffusion with
distribution matching distillation"; Yin et al. 2024b, DMD2).

Why: an ODE distillation (``teacher-ode``, ``lagrangian``) can at best reproduce the teacher's
probability-flow ODE, and the built-in teacher's ODE is far worse than its SDE
(``bench/results/solvers.json``: 7.5 % molecule stability for DPM-Solver++(2M) at 100 calls against
47.5 % for its SDE variant). DMD instead matches the *distribution* of the flow map's samples to the
teacher's, whatever path the ODE takes.

The generator is the jump to the data, x = G(z_s, s, 0), from a start s = j/K of the 1/2/4/8-jump
grids (s = 1: from noise, as a one-call sampler starts). With ``starts="simulated"`` (the default)
z_s is what the γ = 1 sampler hands that jump: prior noise carried down the grid by the flow map's
own earlier jumps to the data, each re-noised to the next grid time, z_{(m−1)/K} =
(α_{(m−1)/K}/α_0) G(z_{m/K}, m/K, 0) + σ_{(m−1)/K} ε, without gradient (DMD2's "backward
simulation", Yin et al. 2024b §4.5). With ``starts="noised-data"``, z_s = α_s x_data + σ_s ε: a
jump then trains on inputs it never meets when sampling, and the sample score fits a mixture of
the two, so the later jumps of a K-jump sampler learn little (measured on ``qm9-fast``: its last
jump of 4 from its own re-noised samples reaches 44 % atom stability, from noised data 51 %). Its
samples are noised to a random level τ, x_τ = α_τ x + σ_τ ε', and KL(p_G,τ ‖ p_teacher,τ) has
the gradient

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
from moldiff.diffusion.schedules import prior_std
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.flowmap.losses import GRID_JUMPS, grid_steps, noised

STARTS = ("simulated", "noised-data")  # where a jump's start z_s comes from (module docstring)


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
        # no weight decay: AdamW's default 0.01 would pull the copy away from the teacher whatever
        # the generator makes, a push of its own in g = x̂_fake − x̂_real
        self.opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0, amsgrad=True)

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


@torch.no_grad()
def simulated_starts(model, k: torch.Tensor, j: torch.Tensor, graph: MolGraph, schedule, like: MolState, dtype,
                     generator: torch.Generator | None = None) -> MolState:  # fmt: skip
    """z at s = j/K (a state of ``like``'s fields) as ``sample_flow_map`` with γ = 1 reaches it on the K-jump grid:
    prior noise at s = 1, then for m = K, …, j + 1 a jump to the data and a re-noise to (m − 1)/K.
    Each round runs the flow map only on the molecules still above their start."""
    device = graph.batch.device
    z = like.randn_like(generator, dtype=dtype)
    z = z * prior_std(schedule(torch.ones((), device=device))).to(dtype)
    alpha_0 = schedule(torch.zeros((), device=device))[0].to(dtype)
    m = k.clone()
    while bool((m > j).any()):
        moving = m > j
        sub, _ = graph.select(moving)
        now = (m[moving] / k[moving]).to(dtype)
        x = model(z.select(moving, sub), now, torch.zeros_like(now), sub)
        alpha, sigma = (v.to(dtype) for v in schedule((m[moving] - 1) / k[moving])[:2])
        eps = x.randn_like(generator, dtype=dtype)
        z = z.put(moving, alpha / alpha_0 * x + sigma * eps)
        m = torch.where(moving, m - 1, m)
    return z


def distribution_matching_loss(model, z0: MolState, graph: MolGraph, schedule, *, teacher, fake: SampleScore,
                               tau_range: tuple[float, float] = (0.02, 0.98), type_weight: float = 1.0,
                               starts: str = "simulated", grids: tuple[int, ...] = GRID_JUMPS,
                               generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:  # fmt: skip
    """(the generator's losses {"loss", "loss_pos", "loss_type"}, its samples x (N, 3 + F) detached,
    for ``fake`` to fit). See the module docstring for the equations and ``starts``; ``grids``: the
    jump counts K whose grids the starts are drawn from (K, then one of its K jumps, uniformly)."""
    b, dtype = graph.num_graphs, z0.dtype
    if starts not in STARTS:
        raise ValueError(f"unknown dmd starts {starts!r}; choose from {', '.join(STARTS)}")
    k, j = grid_steps(b, grids=grids, generator=generator, device=z0.device)
    s = j / k
    if starts == "simulated":
        z_s = simulated_starts(model, k, j, graph, schedule, z0, dtype, generator)
    else:
        z_s, _ = noised(z0, s, graph, schedule, generator)
    s = s.to(dtype)
    x = model(z_s, s, torch.zeros_like(s), graph)
    lo, hi = tau_range
    tau = (lo + (hi - lo) * rng.rand(b, generator=generator, device=z0.device)).to(dtype)
    alpha, sigma = (v.to(dtype) for v in schedule(tau)[:2])
    eps = x.randn_like(generator, dtype=dtype)
    with torch.no_grad():
        x_tau = alpha * x.detach() + sigma * eps
        real = teacher.x0(x_tau, tau, graph)
        fake_x0 = fake.denoiser.x0(x_tau, tau, graph)
        scale = per_molecule_mean((x.detach() - real).columns().abs().mean(1), graph).clamp(min=1e-4)
        g = (fake_x0 - real) / scale
    err = (x - (x - g).detach()) ** 2
    losses = _reduce(0.5 * err, graph, type_weight)
    losses["dm_grad"] = per_molecule_mean((g**2).columns().mean(1), graph).mean().detach()
    return losses, x.detach()


__all__ = ["STARTS", "SampleScore", "distribution_matching_loss", "simulated_starts"]
