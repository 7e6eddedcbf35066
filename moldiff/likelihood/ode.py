"""Probability-flow ODE likelihood (Song et al. 2021, §4.3 and appendix D.2; Chen et al. 2018,
FFJORD, for the instantaneous change of variables with Hutchinson's trace estimator).

The PF-ODE is integrated from data (t = 0) to noise (t = 1) in λ = log(α/σ) for u = z/α, as in
``moldiff.solvers.adaptive``: du/dλ = F(u, λ) = −e^{−λ} ε̂(α u, t(λ)), whose divergence is
∇_u·F = −σ ∇_z·ε̂. Along the path d log p_λ(u_λ)/dλ = −∇_u·F, so

    log p_0(z_0) = log p_1(z_1) + d log(α_1/α_0) + ∫_{λ_0}^{λ_1} ∇_u·F dλ,

with d the molecule's degrees of freedom over all its fields ((N − 1)·3 zero-CoM coordinates, N·F
per atom field, N(N − 1)/2·C per pair field: densities live on that subspace) and
p_1 = N(0, (α_1² + σ_1²) I). The augmented system (u, ∫∇·F) is integrated with
fixed steps uniform in λ by an explicit Runge–Kutta method (Dormand–Prince's 5th-order solution by
default); every evaluation needs one vector–Jacobian product per probe. ∇_z·ε̂ is Hutchinson's
estimate v^T (∂ε̂/∂z) v averaged over ``probes`` Rademacher vectors v per molecule, projected onto the
subspace and fixed along the path (unbiased: E[P v v^T P] = P), or the exact trace (``trace="exact"``, one
backward pass per state dimension: small molecules only). The probes span the concatenated state
of every field, atom and pair fields alike. Every term is a sum over the fields (the trace is the
sum of each field's diagonal block, v_f^T (∂ε̂/∂z)_f v estimates it without bias), so the density
is also reported field by field; only the sum is a log-density.

``ode_bound`` turns the density of the noisy state z_0 into a bound on the discrete data comparable
with the ELBO (variational dequantisation with EDM's own encoder and decoder):

    −log p(x, h, N) ≤ E_{q(z_0|x,h)}[ −log p_ODE(z_0) + log q(z_0 | x, h) − log p(x, h | z_0) ] − log p(N),

with every one-hot field (types, and a graph model's charges and bonds) dequantised and decoded
as the types are (``moldiff.likelihood.elbo.decoder_nll``).
"""

from __future__ import annotations

import math

import torch

from moldiff import rng
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import prior_std
from moldiff.diffusion.state import MolGraph, MolState, grad
from moldiff.errors import MoldiffError
from moldiff.likelihood.elbo import (
    LOG_2PI,
    atom_count_term,
    categorical_fields,
    decoder_nll,
    degrees_of_freedom,
    field_squares,
    molecule_sum,
    noise,
    recon_key,
)
from moldiff.solvers.rk import TABLEAUS

TRACES = ("hutchinson", "exact")


def refuse_categorical(z: MolState) -> None:
    """The probability flow moves continuous states only: a model whose classes jump (categorical
    fields) has no ODE whose change of variables gives a density, so its likelihood is the ELBO's."""
    names = [f.name for f in categorical_fields(z)]
    if names:
        raise MoldiffError(f"the ODE likelihood is undefined for categorical fields ({', '.join(names)}: "
                           "diffusion.discrete categorical); use the ELBO (moldiff nll --method elbo)")  # fmt: skip


def _probes(z: MolState, graph: MolGraph, trace: str, count: int, generator):
    """Projected probe vectors over every field and their weight: ``count`` Rademacher draws
    (weight 1/count), or every basis direction of the molecules (weight 1). The atom fields draw
    side by side as one (N, Σ columns) block, then each pair field."""
    atoms = [f for f in z.specs if f.on == "atoms"]
    pairs = [f for f in z.specs if f.on == "pairs"]
    width = sum(f.columns for f in atoms)

    def state(block: torch.Tensor, pair_values: dict[str, torch.Tensor]) -> MolState:
        values = dict(zip((f.name for f in atoms), block.split([f.columns for f in atoms], dim=1)))
        values.update(pair_values)
        return MolState({f.name: values[f.name] for f in z.specs}, z.specs, graph).project()

    if trace == "hutchinson":
        def signs(shape):
            return rng.randint(2, shape, generator=generator, device=z.device, dtype=torch.float64).mul_(2).sub_(1)

        draws = []
        for _ in range(count):
            block = signs((graph.batch.shape[0], width)).to(z.dtype)
            draws.append(state(block, {f.name: signs(z[f.name].shape).to(z.dtype) for f in pairs}))
        return draws, 1.0 / count
    zero_block = torch.zeros(graph.batch.shape[0], width, dtype=z.dtype, device=z.device)
    zero_pairs = {f.name: torch.zeros_like(z[f.name]) for f in pairs}
    probes = []
    local = torch.arange(zero_block.shape[0], device=z.device) - graph.ptr[graph.batch]  # atom index in its molecule
    for atom in range(int(graph.num_atoms.max())):
        for col in range(width):
            v = zero_block.clone()
            v[local == atom, col] = 1
            probes.append(state(v, zero_pairs))
    if pairs:
        starts = torch.cat([graph.ptr.new_zeros(1), graph.num_pairs.cumsum(0)])
        local = torch.arange(z[pairs[0].name].shape[0], device=z.device) - starts[graph.pair_batch]
        for f in pairs:
            for pair in range(int(graph.num_pairs.max())):
                for col in range(f.columns):
                    v = zero_pairs[f.name].clone()
                    v[local == pair, col] = 1
                    probes.append(state(zero_block, {**zero_pairs, f.name: v}))
    return probes, 1.0


def _eps_and_divergence(denoiser: Denoiser, z: MolState, t: torch.Tensor, graph: MolGraph, probes, weight):
    """(ε̂, {field: its part of ∇_z·ε̂ on the subspace (B,)}) with one network evaluation."""
    with torch.enable_grad():
        z = z.requires_grad_()
        eps = denoiser.eps(z, t, graph)
        div = {f.name: torch.zeros(graph.num_graphs, dtype=torch.float64, device=z.device) for f in z.specs}
        for i, v in enumerate(probes):
            g = grad((eps * v).sum(), z, retain_graph=i < len(probes) - 1)
            for name, part in _field_sums((g * v).to(torch.float64)).items():  # summed in float64: it is integrated
                div[name] += part
    return eps.detach(), {name: value * weight for name, value in div.items()}


def _field_sums(z: MolState) -> dict[str, torch.Tensor]:
    """{field: (B,) each molecule's sum of that field's entries}."""
    return {f.name: molecule_sum(v.sum(1), z.graph, f.on) for f, v in zip(z.specs, z.values.values())}


def ode_log_density(denoiser: Denoiser, z: MolState, graph: MolGraph, *, steps: int = 10,
                    method: str = "dopri5", trace: str = "hutchinson", probes: int = 1,
                    generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """log p_ODE(z) per molecule (B,) of states ``z`` at t = 0 under the model's PF-ODE,
    a density on each molecule's subspace (zero-CoM coordinates, every other field whole). Fixed
    steps uniform in λ with the propagated solution of an embedded Runge–Kutta pair (``dopri5``:
    5th order, 6 NFE per step; ``bosh3``: 3rd order, 3 NFE per step; both reuse their last stage),
    costing 1 + (stages − 1)·``steps`` NFE, each with gradients."""
    return sum(ode_log_density_parts(denoiser, z, graph, steps=steps, method=method, trace=trace, probes=probes,
                                     generator=generator).values())  # fmt: skip


def ode_log_density_parts(denoiser: Denoiser, z: MolState, graph: MolGraph, *, steps: int = 10,
                          method: str = "dopri5", trace: str = "hutchinson", probes: int = 1,
                          generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """:func:`ode_log_density` field by field, {field: (B,)}: each field's prior log-density, its
    share of d log(α_1/α_0) and of the divergence integral. Their sum is log p_ODE(z)."""
    if trace not in TRACES:
        raise ValueError(f"unknown trace estimator {trace!r}; choose from {TRACES}")
    if method not in TABLEAUS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(TABLEAUS)}")
    refuse_categorical(z)
    tab, schedule, b = TABLEAUS[method], denoiser.schedule, graph.num_graphs
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64, device=z.device)
    lam_0, lam_1 = schedule.log_snr(ends)
    alpha_0, alpha_1 = schedule(ends).alpha
    vectors, weight = _probes(z, graph, trace, probes, generator)

    def field(u, lam):  # (F, {field: its part of ∇_u·F}) at log-SNR ``lam``
        t = schedule.t_from_log_snr(lam)
        values = schedule(t)
        eps, div = _eps_and_divergence(denoiser, (values.alpha * u).to(z.dtype), t.to(z.dtype).expand(b), graph,
                                        vectors, weight)  # fmt: skip
        return -torch.exp(-lam) * eps.to(torch.float64), {name: -values.sigma * d for name, d in div.items()}

    h = (lam_1 - lam_0) / steps  # negative: from data to noise
    u = z.to(torch.float64) / alpha_0
    integral = {f.name: torch.zeros(b, dtype=torch.float64, device=z.device) for f in z.specs}
    first = field(u, lam_0)
    for i in range(steps):
        lam = lam_0 + i * h
        ks = [first]
        for j in range(1, tab.stages):
            u_j = u + h * sum(a * k[0] for a, k in zip(tab.a[j], ks) if a != 0)
            ks.append(field(u_j.project(), lam + tab.c[j] * h))
        u = (u + h * sum(w * k[0] for w, k in zip(tab.b, ks) if w != 0)).project()
        for name in integral:
            integral[name] += h * sum(w * k[1][name] for w, k in zip(tab.b, ks) if w != 0)
        first = ks[-1]  # FSAL: the last stage is the field at the new point
    p2 = float(prior_std(schedule(ends[1:]))) ** 2
    sq = field_squares(alpha_1 * u)
    parts = {}
    for f in z.specs:
        dof = degrees_of_freedom(z, f.name)
        log_prior = -0.5 * sq[f.name] / p2 - 0.5 * dof * math.log(2 * math.pi * p2)
        parts[f.name] = log_prior + dof * torch.log(alpha_1 / alpha_0) + integral[f.name]
    return parts


def ode_bound(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_scale: float | None = None,
              log_p_n: torch.Tensor | None = None, steps: int = 10, method: str = "dopri5",
              trace: str = "hutchinson", probes: int = 1,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """−log p(x, h, N) bound through the PF-ODE density of a noisy z_0 ~ q(z_0 | x, h), per molecule
    (B,) in nats, with its terms, for clean states ``z0`` (arguments as
    :func:`moldiff.likelihood.elbo.variational_bound`).

    Returns:
        ``ode`` (−log p_ODE(z_0)), ``log_q``, one reconstruction term per field (``recon_x``,
        ``recon_h``, ``recon_<field>``), ``log_p_n`` and ``nll``; and each field's parts
        ``<field>/ode``, ``<field>/log_q``, ``<field>/recon``.
    """
    refuse_categorical(z0)
    values = denoiser.schedule(torch.tensor(0.0, dtype=torch.float64))
    a0, s0 = values.alpha, values.sigma
    eps = noise(z0, graph, generator)
    z_t0 = (a0 * z0.to(torch.float64) + s0 * eps).to(z0.dtype)
    density = ode_log_density_parts(denoiser, z_t0, graph, steps=steps, method=method, trace=trace, probes=probes,
                                    generator=generator)  # fmt: skip
    sq = field_squares(eps)
    log_q = {f.name: -0.5 * sq[f.name] - degrees_of_freedom(z0, f.name) * (torch.log(s0) + 0.5 * LOG_2PI)
             for f in z0.specs}  # fmt: skip
    with torch.no_grad():
        recon = decoder_nll(denoiser, z0, eps, graph, type_scale)
    terms = {"ode": -sum(density.values()), "log_q": sum(log_q.values())}
    terms.update({recon_key(name): value for name, value in recon.items()})
    for f in z0.specs:
        terms.update({f"{f.name}/ode": -density[f.name], f"{f.name}/log_q": log_q[f.name],
                      f"{f.name}/recon": recon[f.name]})  # fmt: skip
    terms["log_p_n"] = atom_count_term(log_p_n, terms["ode"])
    terms["nll"] = terms["ode"] + terms["log_q"] + sum(recon.values()) - terms["log_p_n"]
    return terms
