"""The variational bound on −log p(x, h, N) in the conventions of EDM (Hoogeboom et al. 2022, §3
and appendix; Kingma et al. 2021 for the continuous-time diffusion term), in nats per molecule:

    −log p(z, N) ≤ KL(q(z_1 | z) ‖ p(z_1))                                prior
                 + ∫_{λ_1}^{λ_0} E_ε ‖ε − ε̂(z_{t(λ)}, t(λ))‖² dλ             diffusion
                 + E_{q(z_0 | z)} [−log p(z | z_0)]                           reconstruction
                 − log p(N)                                                  atom count

for a state z of named fields (coordinates and one-hot atom types; a graph model adds one-hot
formal charges on atoms and one-hot bond classes on atom pairs). Every term is a sum over the
fields, each with its own number of dimensions, and is reported field by field:

* coordinates live in the zero-CoM subspace: (N − 1)·3 dimensions; an atom field with F columns
  has N·F; a pair field with C classes has N(N − 1)/2 · C (one row per unordered pair i < j).
* prior: p(z_1) = N(0, (α_1² + σ_1²) I), which is EDM's N(0, I) for variance-preserving schedules.
* diffusion: the T → ∞ limit of EDM's sum T · E_t[½ (SNR(s)/SNR(t) − 1) ‖ε − ε̂‖²], i.e. VDM's
  L_∞ = −½ ∫ SNR'(t)/SNR(t) ‖ε − ε̂‖² dt rewritten over λ = ½ log SNR (the integral no longer
  depends on the schedule between its ends). It is estimated with ``samples`` stratified draws of
  λ per molecule (one draw serves every field). The continuous-time bound is at least as tight as
  EDM's T = 1000 sum.
* p(x | z_0) for a centred (continuous) field, the coordinates: N(x̂_0(z_0), σ_0²/α_0²) on the
  subspace, (N − 1)·3 (−λ_0 + ½ log 2π) + ½‖ε_x − ε̂_x‖².
* p(h | z_0) for every other field, a one-hot of scale c (types, charges, bonds): EDM's
  discretised Gaussian, per row and class p_k ∝ Φ((u_k − 1 + ½)/σ̄) − Φ((u_k − 1 − ½)/σ̄),
  u = z_0 / c, σ̄ = σ_0 / c, normalised over the row's classes (EDM's
  ``log_pxh_given_z0_without_constants`` for its types, here for each categorical field).
* log p(N) from the training set's atom-count histogram (EDM subtracts it too).

A categorical field (``diffusion.discrete: categorical``: classes on a mixture path,
``moldiff.diffusion.categorical``) has the discrete diffusion's terms instead, per entry, in the
same continuous time (``moldiff.likelihood.categorical``): prior KL(q(x_1 | x_0) ‖ p), zero since
the path ends in its prior; diffusion ∫_{t_1}^1 E[KL rate] dt, the T → ∞ limit of
Σ KL(q(x_s | x_t, x_0) ‖ p_θ(x_s | x_t)) with p_θ the samplers' reverse step; reconstruction
E[−log p_θ(x_0 | x_{t_1})], the last reverse step from t_1 = ``FIRST_STEP`` to 0 (below t_1 the
classes are clean). The joint process (coordinates diffusing, classes jumping, independently given
the data) has one bound whose diffusion term is the sum of the fields' integrals, so one draw of t
per sample serves every field, on one network evaluation of the jointly noised state; the draws
mix the log-SNR-uniform times of the Gaussian fields with log-uniform times on [t_1, 1]
(:func:`joint_times`) and each field's integrand is weighted by 1/density. A state without
categorical fields keeps the log-SNR draws alone.

Differences from EDM's published −110.7 nats on QM9: EDM diffuses an integer charge channel (a
ninth feature, scaled by 1/10, with its own discretised likelihood), where a graph model has a
one-hot formal charge, and a coordinate-only model none; EDM evaluates the diffusion term with
T = 1000 discrete steps.
"""

from __future__ import annotations

import math

import torch

from moldiff import rng
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.discrete import class_probabilities, classes_of, noise_classes
from moldiff.diffusion.schedules import d_log_snr, prior_std
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.diffusion.state import degrees_of_freedom as state_dof
from moldiff.likelihood import categorical as CL

LOG_2PI = math.log(2 * math.pi)
FIRST_STEP = 1e-3  # a categorical field's last reverse step, from t = 1e-3 to 0 (EDM's first of T = 1000)


def molecule_sum(values: torch.Tensor, graph: MolGraph, on: str = "atoms") -> torch.Tensor:
    """Sum over each molecule's rows (atoms (N,) or pairs (P,), per ``on``) of a value -> (B,)."""
    zeros = torch.zeros(graph.num_graphs, dtype=values.dtype, device=values.device)
    return zeros.index_add_(0, graph.index(on), values)


def degrees_of_freedom(z: MolState, field: str | None = None) -> torch.Tensor:
    """(B,) dimensions of each molecule's state, or of one ``field`` of it (zero-CoM coordinates:
    (N − 1)·3; an atom field N·F; a pair field N(N − 1)/2·C), in float64."""
    specs = z.specs if field is None else tuple(f for f in z.specs if f.name == field)
    return state_dof(specs, z.graph).double()


def noise(z0: MolState, graph: MolGraph, generator: torch.Generator | None) -> MolState:
    """Zero-CoM Gaussian noise shaped like ``z0``, in float64 (the likelihood's precision)."""
    return z0.randn_like(generator, dtype=torch.float64)


def squares(z: MolState) -> torch.Tensor:
    """(B,) each molecule's squared norm."""
    return z.molecule_sum(lambda v, f: (v**2).sum(1))


def field_squares(z: MolState) -> dict[str, torch.Tensor]:
    """{field: (B,) each molecule's squared norm of that field}."""
    return {f.name: molecule_sum((v**2).sum(1), z.graph, f.on) for f, v in zip(z.specs, z.values.values())}


def categorical_fields(z: MolState) -> list:
    """The specs of ``z``'s categorical fields (``diffusion.discrete: categorical``)."""
    return [f for f in z.specs if f.kind == "categorical"]


def recon_key(name: str) -> str:
    """The aggregate reconstruction term of a field: ``recon_x`` (coordinates), ``recon_h``
    (types), ``recon_<name>`` for any other field."""
    return {"coords": "recon_x", "types": "recon_h"}.get(name, f"recon_{name}")


def field_totals(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{field: its part of the bound}, the sum of the ``<field>/<term>`` entries of a bound's terms;
    the bound's ``nll`` is their sum minus ``log_p_n``."""
    totals: dict[str, torch.Tensor] = {}
    for key, value in terms.items():
        if "/" in key:
            name = key.split("/", 1)[0]
            totals[name] = totals[name] + value if name in totals else value
    return totals


def _at(schedule, t: float, like: torch.Tensor):
    return schedule(torch.tensor(t, dtype=torch.float64, device=like.device))


def prior_terms(z0: MolState, graph: MolGraph, schedule, class_priors: dict | None = None) -> dict[str, torch.Tensor]:
    """KL(N(α_1 z_0, σ_1² I) ‖ N(0, p² I)) on each Gaussian field's subspace, p² = α_1² + σ_1², and
    KL(q(x_1 | x_0) ‖ prior) of each categorical field (its path prior in ``class_priors``):
    {field: (B,)}."""
    values = _at(schedule, 1.0, z0)
    a, s, p = values.alpha, values.sigma, prior_std(values)
    per_dof = torch.log(p / s) + s**2 / (2 * p**2) - 0.5
    sq = field_squares(z0.to(torch.float64))
    out = {}
    for f in z0.specs:
        if f.kind == "categorical":
            rows = CL.prior_kl(z0[f.name].argmax(1), class_priors[f.name].to(z0.device))
            out[f.name] = molecule_sum(rows, graph, f.on)
        else:
            out[f.name] = degrees_of_freedom(z0, f.name) * per_dof + a**2 * sq[f.name] / (2 * p**2)
    return out


def prior_term(z0: MolState, graph: MolGraph, schedule, class_priors: dict | None = None) -> torch.Tensor:
    """The prior KL over the whole state: (B,)."""
    return sum(prior_terms(z0, graph, schedule, class_priors).values())


def diffusion_terms(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, samples: int = 1,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """(λ_0 − λ_1) E_{λ ~ U[λ_1, λ_0]} ‖ε_f − ε̂_f(z_t(λ), t(λ))‖² of each field f, stratified over
    ``samples`` draws shared by the fields: {field: (B,)}. ``samples`` NFE.

    A state with categorical fields takes :func:`joint_diffusion_terms` instead."""
    if categorical_fields(z0):
        return joint_diffusion_terms(denoiser, z0, graph, samples=samples, generator=generator)
    schedule = denoiser.schedule
    lam_1, lam_0 = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64))
    b = graph.num_graphs
    total = {f.name: torch.zeros(b, dtype=torch.float64, device=z0.device) for f in z0.specs}
    for k in range(samples):
        u = (k + rng.rand(b, generator=generator, device="cpu", dtype=torch.float64)) / samples  # λ on the CPU
        t = schedule.t_from_log_snr(lam_1 + u * (lam_0 - lam_1)).to(device=z0.device)
        eps = noise(z0, graph, generator)
        a, s, _, _ = schedule(t)
        z_t = (a * z0.to(torch.float64) + s * eps).to(z0.dtype)
        errors = field_squares(eps - denoiser.eps(z_t, t.to(z0.dtype), graph).to(torch.float64))
        for name in total:
            total[name] += errors[name]
    return {name: (lam_0 - lam_1) * value / samples for name, value in total.items()}


def joint_times(u: torch.Tensor, schedule, first_step: float = FIRST_STEP) -> tuple[torch.Tensor, torch.Tensor]:
    """Times for the joint diffusion term from uniforms ``u`` (B,) in [0, 1), and their density:
    (t, r(t)), each (B,). r is the even mixture of the log-SNR-uniform density |dλ/dt|/(λ_0 − λ_1),
    the Gaussian fields' sampler, and the log-uniform density 1/(t log(1/t_1)) on [t_1, 1], t_1 =
    ``first_step``, for the categorical fields: their KL rate grows like log(1/t)/t on the rare
    entries that have left their class near the data end, which uniform times would sample with a
    heavy tail. u < ½ picks the first, u ≥ ½ the second, so stratified u stay stratified in each."""
    lam_1, lam_0 = schedule.log_snr(torch.tensor([1.0, 0.0], dtype=torch.float64))
    first = u < 0.5
    log_t1 = math.log(first_step)
    t = torch.where(first, schedule.t_from_log_snr(lam_1 + 2 * u * (lam_0 - lam_1)), torch.exp(log_t1 * (2 - 2 * u)))
    t = t.clamp(0.0, 1.0)
    log_uniform = torch.where(t >= first_step, 1 / (t.clamp_min(first_step) * -log_t1), torch.zeros_like(t))
    density = 0.5 * d_log_snr(schedule(t)).abs() / (lam_0 - lam_1) + 0.5 * log_uniform
    return t, density


def joint_diffusion_terms(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, samples: int = 1,
                          generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """The diffusion term of each field of a state with categorical fields: {field: (B,)}.
    ``samples`` NFE.

    A Gaussian field's is ∫_0^1 |dλ/dt| E‖ε_f − ε̂_f‖² dt, the integral of :func:`diffusion_terms`
    over t; a categorical field's is ∫_{t_1}^1 E Σ_rows KL rate dt (``moldiff.likelihood.categorical``,
    t_1 = ``FIRST_STEP``: below it the classes are clean and the last step is the reconstruction
    term). Both are estimated at the same ``samples`` stratified times per molecule, drawn by
    :func:`joint_times` and weighted by 1/r(t), so that one network evaluation on the jointly noised
    state (coordinates at t, classes x_t ~ q(x_t | x_0)) serves every field."""
    schedule, b = denoiser.schedule, graph.num_graphs
    cats = categorical_fields(z0)
    priors = {f.name: denoiser.class_priors[f.name].to(z0.device) for f in cats}
    clean = classes_of(z0)
    total = {f.name: torch.zeros(b, dtype=torch.float64, device=z0.device) for f in z0.specs}
    for k in range(samples):
        u = (k + rng.rand(b, generator=generator, device="cpu", dtype=torch.float64)) / samples
        t, density = (v.to(z0.device) for v in joint_times(u, schedule, FIRST_STEP))
        eps = noise(z0, graph, generator)
        values = schedule(t)
        z_t = (values.alpha * z0.to(torch.float64) + values.sigma * eps).to(z0.dtype)
        t_class = torch.where(t < FIRST_STEP, torch.zeros_like(t), t)  # clean classes below the last step
        z_t = noise_classes(z0, z_t, t_class, graph, priors, generator)
        out = denoiser.eps(z_t, t.to(z0.dtype), graph)
        errors = field_squares((eps - out.to(torch.float64)).of_kind("gaussian"))
        for f in z0.specs:
            if f.kind == "gaussian":
                total[f.name] += d_log_snr(values).abs() * errors[f.name] / density
                continue
            rows = graph.index(f.on)
            t_rows = t_class[rows].clamp_max(1 - 1e-9)  # the KL rate is 0 · ∞ at t = 1 itself
            rates = CL.kl_rate(z_t[f.name].argmax(1), clean[f.name], class_probabilities(out[f.name], f), t_rows,
                               priors[f.name])  # fmt: skip
            rates = torch.where(t_class[rows] > 0, rates, torch.zeros_like(rates))
            total[f.name] += molecule_sum(rates, graph, f.on) / density
    return {name: value / samples for name, value in total.items()}


def diffusion_term(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, samples: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """The diffusion term over the whole state: (B,)."""
    return sum(diffusion_terms(denoiser, z0, graph, samples=samples, generator=generator).values())


def one_hot_nll(z: torch.Tensor, true: torch.Tensor, scale: float, sigma: torch.Tensor) -> torch.Tensor:
    """EDM's discretised Gaussian likelihood of one-hot classes read from a noisy z_0: (rows,)
    −log p(true class) for z (rows, C) on a one-hot of ``scale`` with noise ``sigma`` (0-d) at t = 0."""
    u = z / scale - 1
    sigma = sigma / scale
    phi = torch.special.ndtr
    log_prop = torch.log(phi((u + 0.5) / sigma) - phi((u - 0.5) / sigma) + 1e-10)
    log_probs = log_prop - torch.logsumexp(log_prop, dim=1, keepdim=True)
    return -log_probs.gather(1, true[:, None])[:, 0]


def decoder_nll(denoiser: Denoiser, z0: MolState, eps: MolState, graph: MolGraph,
                type_scale: float | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """−log p(field | z_0) of every Gaussian field, {field: (B,)}, for z_0 = α_0 z0 + σ_0 ε. One NFE.

    Centred fields (coordinates) have a Gaussian decoder around the network's x̂_0; every other
    field is a one-hot of its spec's scale (``type_scale`` overrides it for ``types``), decoded by
    EDM's discretised Gaussian from z_0 itself. Categorical fields are clean at t = 0 (the network
    reads their classes) and have their own last step (:func:`class_reconstruction`)."""
    values = _at(denoiser.schedule, 0.0, z0)
    a0, s0 = values.alpha, values.sigma
    lam_0 = torch.log(a0 / s0)
    z_t0 = a0 * z0.to(torch.float64) + s0 * eps
    z_t0 = z_t0.with_values(**{f.name: z0[f.name].to(torch.float64) for f in categorical_fields(z0)})
    out = {}
    eps_hat = None
    for f in z0.specs:
        if f.kind == "categorical":
            continue
        if f.centred:
            if eps_hat is None:
                t = torch.zeros(graph.num_graphs, dtype=z0.dtype, device=z0.device)
                eps_hat = denoiser.eps(z_t0.to(z0.dtype), t, graph).to(torch.float64)
            sq = molecule_sum(((eps[f.name] - eps_hat[f.name]) ** 2).sum(1), graph, f.on)
            out[f.name] = degrees_of_freedom(z0, f.name) * (-lam_0 + 0.5 * LOG_2PI) + 0.5 * sq
        else:
            scale = type_scale if f.name == "types" and type_scale is not None else f.scale
            rows = one_hot_nll(z_t0[f.name], z0[f.name].argmax(1), scale, s0)
            out[f.name] = molecule_sum(rows, graph, f.on)
    return out


def class_reconstruction(denoiser: Denoiser, z0: MolState, graph: MolGraph,
                         generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """E[−log p_θ(x_0 | z_{t_1}, x_{t_1})] of every categorical field, {field: (B,)}: the last reverse
    step, from t_1 = ``FIRST_STEP`` to 0, on the jointly noised state at t_1. One NFE."""
    b = graph.num_graphs
    t = torch.full((b,), FIRST_STEP, dtype=torch.float64, device=z0.device)
    cats = categorical_fields(z0)
    priors = {f.name: denoiser.class_priors[f.name].to(z0.device) for f in cats}
    values = denoiser.schedule(t)
    z_t = (values.alpha * z0.to(torch.float64) + values.sigma * noise(z0, graph, generator)).to(z0.dtype)
    z_t = noise_classes(z0, z_t, t, graph, priors, generator)
    out = denoiser.eps(z_t, t.to(z0.dtype), graph)
    clean = classes_of(z0)
    terms = {}
    for f in cats:
        rows = CL.reconstruction_nll(z_t[f.name].argmax(1), clean[f.name], class_probabilities(out[f.name], f),
                                     FIRST_STEP, priors[f.name])  # fmt: skip
        terms[f.name] = molecule_sum(rows, graph, f.on)
    return terms


def atom_count_term(log_p_n: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """log p(N) per molecule (B,) as ``like``'s dtype and device, 0 if not given."""
    return torch.zeros_like(like) if log_p_n is None else log_p_n.to(like)


@torch.no_grad()
def variational_bound(denoiser: Denoiser, z0: MolState, graph: MolGraph, *, type_scale: float | None = None,
                      log_p_n: torch.Tensor | None = None, samples: int = 1,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
    """The bound's terms and their sum per molecule, each (B,) in nats, for clean states ``z0``
    (zero-CoM coordinates and scaled one-hots). Costs ``samples`` + 1 NFE per molecule, one more
    with categorical fields (their last reverse step).

    Args:
        denoiser: the model.
        z0: clean states of every field the model diffuses, on ``graph`` (with its pairs for a
            state with pair fields).
        graph: the molecules.
        type_scale: the one-hot scale of the types (default: their spec's scale).
        log_p_n: (B,) log-probability of each molecule's atom count (0 if omitted).
        samples: stratified time draws of the diffusion term (log-SNR draws; :func:`joint_times`
            with categorical fields).
        generator: the Monte Carlo noise.

    Returns:
        ``prior``, ``diffusion``, one reconstruction term per field (``recon_x``: coordinates,
        ``recon_h``: types, ``recon_<field>`` for the others), ``log_p_n`` and ``nll`` = their sum
        − log p(N); and each field's parts ``<field>/prior``, ``<field>/diffusion``,
        ``<field>/recon`` (:func:`field_totals` adds them up by field).
    """
    prior = prior_terms(z0, graph, denoiser.schedule, getattr(denoiser, "class_priors", None))
    diffusion = diffusion_terms(denoiser, z0, graph, samples=samples, generator=generator)
    recon = decoder_nll(denoiser, z0, noise(z0, graph, generator), graph, type_scale)
    if categorical_fields(z0):
        recon.update(class_reconstruction(denoiser, z0, graph, generator))
    recon = {f.name: recon[f.name] for f in z0.specs}
    terms = {"prior": sum(prior.values()), "diffusion": sum(diffusion.values())}
    terms.update({recon_key(name): value for name, value in recon.items()})
    for f in z0.specs:
        terms.update({f"{f.name}/prior": prior[f.name], f"{f.name}/diffusion": diffusion[f.name],
                      f"{f.name}/recon": recon[f.name]})  # fmt: skip
    terms["log_p_n"] = atom_count_term(log_p_n, terms["prior"])
    terms["nll"] = terms["prior"] + terms["diffusion"] + sum(recon.values()) - terms["log_p_n"]
    return terms
