"""Guidance and steering of models with categorical discrete fields, on exact toy denoisers whose
tilted class laws are known: classifier-free guidance mixes the classes' log-probabilities, regressor
guidance tilts their logits (or leaves them to the model), steering particles carry their classes;
then the same on a tiny trained categorical model, end to end."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from moldiff.diffusion import categorical as C
from moldiff.diffusion.denoiser import PredictionViews
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec, MoleculeNoise, MolGraph, MolState
from moldiff.guidance.cfg import ClassifierFreeDenoiser, mix_class_logits
from moldiff.guidance.condition import PropertyNorm
from moldiff.guidance.regressor import GuideTerm, RegressorGuidedDenoiser
from moldiff.guidance.steering import steering_solver
from moldiff.solvers import get_solver
from moldiff.solvers.categorical import CategoricalSteps, start_classes

SCALE = 0.25
COND = torch.tensor([0.6, 0.3, 0.1, 0.0], dtype=torch.float64)  # the clean types under the condition
UNCOND = torch.tensor([0.2, 0.3, 0.5, 0.0], dtype=torch.float64)  # and without it
BONDS = torch.tensor([0.8, 0.15, 0.05], dtype=torch.float64)
TIMES = torch.cat([torch.linspace(1.0, 0.05, 20), torch.tensor([0.002, 0.0])])


def _specs(prior: str = "marginal") -> tuple[FieldSpec, ...]:
    mask = prior == "masking"
    kind = {"kind": "categorical", "scale": SCALE, "masked": mask}
    return (FieldSpec("coords", columns=3, centred=True), FieldSpec("types", columns=4 + mask, **kind),
            FieldSpec("bonds", on="pairs", columns=3 + mask, **kind))  # fmt: skip


def _priors(specs, prior: str = "marginal") -> dict[str, torch.Tensor]:
    marginal = {"types": torch.tensor([0.25, 0.25, 0.25, 0.25]), "bonds": torch.tensor([0.5, 0.3, 0.2])}
    return {f.name: C.prior_probabilities(prior, f.columns, marginal.get(f.name)) for f in specs[1:]}


class ExactClasses(PredictionViews):
    """Knows the data: entries independent, types drawn from COND where a molecule's condition flag
    (the last column of ``graph.cond``) is 1 and from UNCOND where it is 0 or there is no condition,
    bonds from BONDS; its logits are log p(x_0 | x_t) exactly; the coordinates get ε̂ = 0."""

    def __init__(self, specs, priors) -> None:
        self.specs, self.class_priors, self.schedule, self.nfe = specs, priors, make_schedule("cosine"), 0

    def coefficients(self, t, graph):
        return tuple(self.schedule(t))

    def _posterior(self, z: MolState, t: torch.Tensor, f: FieldSpec, graph: MolGraph) -> torch.Tensor:
        rows = graph.index(f.on)
        if f.on == "pairs":
            data = BONDS.expand(rows.shape[0], -1)
        else:
            flag = torch.zeros(graph.num_graphs, dtype=torch.float64) if graph.cond is None else graph.cond[:, -1].double()
            data = flag[rows, None] * COND + (1 - flag[rows, None]) * UNCOND
        data = torch.cat([data, torch.zeros(rows.shape[0], f.columns - data.shape[1], dtype=torch.float64)], 1)
        kappa = C.keep_probability(t.double())[rows, None]
        x_t = z[f.name].argmax(1)
        # p(x_0 = c | x_t) ∝ π_c (κ δ(c, x_t) + (1 − κ) p(x_t))
        like = kappa * torch.nn.functional.one_hot(x_t, f.columns) + (1 - kappa) * self.class_priors[f.name][x_t][:, None]
        return (data * like).log().float()

    def x0_eps(self, z, t, graph):
        self.nfe += 1
        out = {f.name: torch.zeros_like(z[f.name]) if f.kind == "gaussian" else self._posterior(z, t, f, graph)
               for f in z.specs}  # fmt: skip
        out = MolState(out, z.specs, graph)
        a, s, _, _ = self.coefficients(t, graph)
        return out.with_values(coords=(z["coords"] - s[graph.batch, None] * out["coords"]) / a[graph.batch, None]), out

    def predict(self, kind, z, t, graph):
        x0, eps = self.x0_eps(z, t, graph)
        return eps if kind == "eps" else x0


class TypeCount:
    """A toy property predictor: Σ_i h_i0, the first type column of each molecule's one-hots summed,
    at any time (an energy that adds up over entries, so the class tilt is exact)."""

    norm = PropertyNorm(("count",), (0.0,), (1.0,))
    reads = ("coords", "types")

    def __call__(self, z, t, graph, schedule=None):
        per_atom = z["types"][:, 0] + 0.0 * z["coords"].sum(1)  # reads the coordinates, moves none
        return torch.zeros(graph.num_graphs, dtype=z.dtype).index_add(0, graph.batch, per_atom)[:, None]


def _run(denoiser, seeds, sizes, cond=None, solver="ddpm", wrap=None, times=TIMES):
    """Final types and bonds (classes) of the molecules ``seeds`` with ``sizes`` under ``denoiser``
    (the categorical step outside it), and the state the solver ends with."""
    specs = _specs()
    graph = MolGraph.from_counts(torch.tensor(sizes), cond).with_pairs()
    noise = MoleculeNoise(seeds, graph, specs[:1])
    z = noise.randn()
    full = MolState({"coords": z["coords"], "types": torch.zeros(graph.batch.shape[0], specs[1].columns),
                     "bonds": torch.zeros(graph.pairs.shape[0], specs[2].columns)}, specs, graph)  # fmt: skip
    steps = CategoricalSteps(denoiser, start_classes(full, noise, denoiser.class_priors), noise)
    sample = get_solver(solver) if wrap is None else wrap(get_solver(solver))
    out = steps.finish(sample(steps, z, times, graph, noise))
    return out["types"].argmax(1), out["bonds"].argmax(1), out


def _frequencies(classes: torch.Tensor, k: int = 4) -> torch.Tensor:
    return torch.bincount(classes, minlength=k)[:k].double() / len(classes)


def _follows(classes: torch.Tensor, law: torch.Tensor) -> bool:
    freq = _frequencies(classes, len(law))
    err = (law * (1 - law) / len(classes)).sqrt()
    return bool(((freq - law).abs() <= 4 * err + 1e-3).all())


# ------------------------------------------------------------------------- classifier-free guidance
def test_mixed_class_logits_are_the_tilted_normalised_law():
    spec = FieldSpec("types", columns=4, kind="categorical")
    p_c, p_u = torch.tensor([[0.6, 0.3, 0.1, 1e-3]]), torch.tensor([[0.2, 0.3, 0.5, 1e-3]])
    for w in (0.0, 1.0, 2.0, 3.5):
        mixed = mix_class_logits(p_c.log() + 7.0, p_u.log() - 2.0, w, spec)  # logits: any offset
        law = p_u ** (1 - w) * p_c**w
        torch.testing.assert_close(mixed.exp(), law / law.sum(), rtol=1e-5, atol=1e-7)
    masked = FieldSpec("types", columns=4, kind="categorical", masked=True)
    mixed = mix_class_logits(p_c.log(), p_u.log(), 2.0, masked)
    assert mixed[0, 3] == float("-inf") and torch.isclose(mixed.exp().sum(), torch.tensor(1.0))


@pytest.mark.parametrize("w", [1.0, 2.0])
def test_classifier_free_guidance_moves_the_classes_to_the_mixed_law(w):
    # with exact posteriors of two known type laws, the guided classes follow p_u^(1−w) p_c^w exactly
    n = 300
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    guided = ClassifierFreeDenoiser(toy, w)
    cond = torch.tensor([[0.0, 1.0]]).expand(n, -1)
    types, bonds, _ = _run(guided, list(range(n)), [8] * n, cond)
    law = UNCOND ** (1 - w) * COND**w
    law = torch.where(COND > 0, law, 0.0) / torch.where(COND > 0, law, 0.0).sum()
    assert _follows(types, law), (_frequencies(types), law)
    assert _follows(bonds, BONDS)  # both predictions agree on the bonds: guidance leaves them
    plain, _, _ = _run(toy, list(range(n)), [8] * n)  # no condition: UNCOND, far from the guided law
    assert (_frequencies(plain) - law).abs().max() > 0.25


# ----------------------------------------------------------------------------- regressor guidance
@pytest.mark.parametrize("direction", [1, -1])
def test_regressor_guidance_tilts_the_class_logits_to_the_tilted_law(direction):
    # E = −λ d Σ_i h_i0 adds up over atoms, so the tilted law p(x) e^{−E} is the data's types with
    # class 0 weighted by e^{λ d s}: the logit tilt −s ∂E/∂h gives it exactly
    n, lam = 300, 4.0
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    guided = RegressorGuidedDenoiser(toy, TypeCount(), [GuideTerm("count", direction=direction)], scale=lam)
    types, bonds, _ = _run(guided, list(range(n)), [8] * n)
    law = UNCOND * torch.tensor([np.exp(direction * lam * SCALE), 1.0, 1.0, 1.0], dtype=torch.float64)
    assert _follows(types, law / law.sum()), (_frequencies(types), law / law.sum())
    assert _follows(bonds, BONDS)  # the predictor does not read the bonds
    plain, _, _ = _run(toy, list(range(n)), [8] * n)
    assert direction * (_frequencies(types)[0] - _frequencies(plain)[0]) > 0.1


def test_regressor_guidance_without_features_leaves_the_classes_to_the_model():
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    guided = RegressorGuidedDenoiser(toy, TypeCount(), [GuideTerm("count", direction=1)], scale=4.0, features=False)
    seeds, sizes = list(range(20)), [6] * 20
    types, bonds, out = _run(guided, seeds, sizes)
    plain_types, plain_bonds, plain = _run(toy, seeds, sizes)
    assert torch.equal(types, plain_types) and torch.equal(bonds, plain_bonds)
    torch.testing.assert_close(out["coords"], plain["coords"])


def test_the_class_tilt_is_capped_per_molecule():
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    graph = MolGraph.from_counts(torch.tensor([3, 5])).with_pairs()
    z = MolState({"coords": torch.randn(8, 3), "types": torch.eye(4)[torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])] * SCALE,
                  "bonds": torch.eye(3)[torch.zeros(13, dtype=torch.long)] * SCALE}, specs, graph).project()  # fmt: skip
    t = torch.tensor([0.5, 0.5])
    plain, _ = toy.x0_eps(z, t, graph)
    rms_per_unit = float(torch.tensor([0.75, -0.25, -0.25, -0.25]).pow(2).mean().sqrt())  # a centred unit move of class 0
    for scale, cap in ((1e4, 1.0), (1e4, 0.3), (1.0, 1.0)):
        guided = RegressorGuidedDenoiser(toy, TypeCount(), [GuideTerm("count", direction=1)], scale=scale, max_shift=cap)
        move = guided.x0_eps(z, t, graph)[0]["types"] - plain["types"]  # class 3 is impossible (−inf) in both
        gap = move[:, 0] - move[:, 1]  # class 0's logit against another's: what the softmax sees
        assert torch.allclose(gap, torch.full_like(gap, min(cap / rms_per_unit, scale * SCALE)), rtol=1e-5), (scale, cap)
        assert torch.allclose(move[:, 1], move[:, 2])


def test_regressor_guided_classes_are_their_seeds():
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    guided = RegressorGuidedDenoiser(toy, TypeCount(), [GuideTerm("count", direction=1)], scale=4.0)
    together = _run(guided, [5, 6, 7], [3, 4, 5])
    again = _run(guided, [5, 6, 7], [3, 4, 5])
    alone = _run(guided, [6], [4])
    assert torch.equal(together[0], again[0]) and torch.equal(together[1], again[1])
    assert torch.equal(alone[0], together[0][3:7]) and torch.equal(alone[1], together[1][3:9])


# -------------------------------------------------------------------------------------- steering
def zero_count(z: MolState, graph: MolGraph) -> np.ndarray:
    """Atoms of class 0 (by the one-hot's argmax) of each molecule."""
    is_zero = (z["types"].argmax(1) == 0).double()
    return torch.zeros(graph.num_graphs, dtype=torch.float64).index_add(0, graph.batch.cpu(), is_zero.cpu()).numpy()


def _steered(seeds, sizes, solver="ddpm", **steer):
    specs = _specs()
    toy = ExactClasses(specs, _priors(specs))
    calls = []

    def reward(z, graph):
        calls.append(zero_count(z, graph))
        return calls[-1]

    types, bonds, out = _run(toy, seeds, sizes, solver=solver, wrap=lambda s: steering_solver(s, reward, **steer))
    return types, bonds, out, calls


def test_steering_selects_particles_by_their_classes():
    # a reward that counts class-0 atoms: the best of 6 particles has more of them than a plain draw,
    # and the molecule kept has exactly the classes the reward scored for its best particle
    n, size, p = 40, 6, 6
    seeds, sizes = list(range(n)), [size] * n
    plain, _, _ = _run(ExactClasses(_specs(), _priors(_specs())), seeds, sizes)
    _, _, out, calls = _steered(seeds, sizes, particles=p, strength=1.0, resamplings=2, select="best")
    kept = zero_count(out, out.graph)
    assert np.array_equal(kept, calls[-1].reshape(n, p).max(1))  # the final call scores every particle
    assert kept.mean() > (plain.reshape(n, size) == 0).sum(1).double().mean().item() + 0.8
    assert len(calls) == 3 and all(len(c) == n * p for c in calls)


def test_resampled_particles_carry_their_classes():
    # λ = 50: each resampling keeps only the particles whose x̂₀ has the most class-0 atoms, the last
    # one at t = 0.002, where classes no longer move: every particle of a molecule then ends a copy
    # of a best one, with its count, which only holds if its classes moved with it
    n, p = 40, 8
    _, _, out, calls = _steered(list(range(n)), [5] * n, particles=p, strength=50.0, resamplings=3, window=0.25)
    last, final = calls[-2].reshape(n, p), calls[-1].reshape(n, p)
    assert last.std(1).mean() > 0.2  # particles differ before the last resampling
    assert np.array_equal(final.min(1), last.max(1)) and np.array_equal(final.max(1), last.max(1))
    assert np.array_equal(zero_count(out, out.graph), last.max(1))


@pytest.mark.parametrize("solver", ["ddpm", "heun", "dpmpp-2m", "adaptive"])
def test_steered_categorical_molecules_are_their_seeds(solver):
    steer = {"particles": 4, "strength": 1.0, "resamplings": 2, "solver": solver}
    together = _steered([3, 5, 4], [3, 5, 4], **steer)
    again = _steered([3, 5, 4], [3, 5, 4], **steer)
    alone = _steered([5], [5], **steer)
    for i in range(2):
        assert torch.equal(together[i], again[i])
    torch.testing.assert_close(together[2]["coords"], again[2]["coords"], rtol=0, atol=0)
    assert torch.equal(alone[0], together[0][3:8]) and torch.equal(alone[1], together[1][3:13])
    torch.testing.assert_close(alone[2]["coords"], together[2]["coords"][3:8], rtol=0, atol=1e-6)


def test_one_particle_is_the_plain_categorical_run():
    plain = _run(ExactClasses(_specs(), _priors(_specs())), [1, 2], [4, 6])
    steered = _steered([1, 2], [4, 6], particles=1, strength=5.0)
    assert torch.equal(plain[0], steered[0]) and torch.equal(plain[1], steered[1])


# ------------------------------------------------------------------ a tiny trained categorical model
def _tiny(out, settings, prior: str = "marginal", extra=()):
    from moldiff.config import load_config
    from moldiff.models import load_generator
    from moldiff.train.loop import train

    train(load_config("tiny_graph", [*settings, f"out_dir={out}", "train.max_steps=2", "diffusion.discrete=categorical",
                                     f"diffusion.discrete_prior={prior}", *extra]), log=lambda m: None)  # fmt: skip
    return load_generator(str(out / "model.pt"))


@pytest.fixture(scope="module")
def categorical_model(tmp_path_factory, tiny_graph_settings):
    return _tiny(tmp_path_factory.mktemp("categorical"), tiny_graph_settings)


def _plan_molecules(model, spec, n=3, seed=1, steps=6):
    from moldiff.guidance.plan import plan_guidance
    from moldiff.solvers import solver_times

    generator, config, payload = model
    plan = plan_guidance(generator, config, payload, spec)
    times = solver_times("ddpm", steps, generator.denoiser.schedule)
    return plan.generate(n, seed=seed, solver=get_solver("ddpm"), times=times, n_atoms=7)[0]


def _same(a, b) -> bool:
    return (np.array_equal(a.atomic_numbers, b.atomic_numbers) and np.array_equal(a.positions, b.positions)
            and np.array_equal(a.bonds, b.bonds) and np.array_equal(a.charges, b.charges))  # fmt: skip


def test_a_categorical_model_steers_the_same_molecules_for_the_same_seeds(categorical_model):
    from moldiff.guidance.plan import GuidanceSpec
    from moldiff.guidance.regressor import parse_guide

    spec = GuidanceSpec(steer=(parse_guide("qed=max"),), particles=3, resamplings=2, steer_strength=5.0)
    first, again = _plan_molecules(categorical_model, spec), _plan_molecules(categorical_model, spec)
    assert first.has_bonds and len(first) == 3 and _same(first, again)
    assert not _same(first, _plan_molecules(categorical_model, GuidanceSpec()))  # the particles did something


@pytest.mark.parametrize("prior", ["marginal", "masking"])
def test_regressor_guidance_moves_a_categorical_models_coordinates_and_types(tmp_path, tiny_graph_settings, prior):
    from moldiff.guidance.plan import GuidanceSpec
    from moldiff.guidance.regressor import parse_guide
    from moldiff.property_model import load_property_model

    model = _tiny(tmp_path, tiny_graph_settings, prior)
    generator = model[0]
    predictor = load_property_model("qm9-predictor")
    guided = RegressorGuidedDenoiser(generator.denoiser, predictor, [parse_guide("alpha=max")], scale=50.0)
    graph = MolGraph.from_counts(torch.tensor([5, 7])).with_pairs()
    noise = MoleculeNoise([3, 4], graph, tuple(f for f in generator.fields if f.kind == "gaussian"))
    full = MolState({f.name: noise.randn()[f.name] if f.kind == "gaussian" else
                     torch.zeros(graph.index(f.on).shape[0], f.columns) for f in generator.fields}, generator.fields, graph)  # fmt: skip
    z = start_classes(full, noise, generator.denoiser.class_priors)
    t = torch.tensor([0.3, 0.5])
    x0, _ = guided.x0_eps(z, t, graph)
    plain, _ = generator.denoiser.x0_eps(z, t, graph)
    for name in ("coords", "types"):
        assert not torch.allclose(x0[name], plain[name]), name
    for name in ("charges", "bonds"):  # the predictor reads neither
        assert torch.equal(x0[name], plain[name]), name
    spec = GuidanceSpec(terms=(parse_guide("alpha=max"),), predictor="qm9-predictor", guide_scale=50.0)
    first, again = _plan_molecules(model, spec), _plan_molecules(model, spec)
    assert _same(first, again) and not _same(first, _plan_molecules(model, GuidanceSpec()))


def test_classifier_free_guidance_of_a_conditional_categorical_model(tmp_path, tiny_graph_settings):
    from moldiff.guidance.plan import GuidanceSpec, plan_guidance

    model = _tiny(tmp_path, tiny_graph_settings, extra=("data.properties=[mu]",))
    generator, config, payload = model
    plan = plan_guidance(generator, config, payload, GuidanceSpec(targets={"mu": 3.0}, guidance_scale=2.5))
    graph = replace(MolGraph.from_counts(torch.tensor([5, 7])).with_pairs(), cond=plan.conditions(2))
    noise = MoleculeNoise([3, 4], graph, tuple(f for f in generator.fields if f.kind == "gaussian"))
    full = MolState({f.name: noise.randn()[f.name] if f.kind == "gaussian" else
                     torch.zeros(graph.index(f.on).shape[0], f.columns) for f in generator.fields}, generator.fields, graph)  # fmt: skip
    z = start_classes(full, noise, generator.denoiser.class_priors)
    t = torch.tensor([0.4, 0.7])
    x0 = plan.generator.denoiser.x0(z, t, graph)
    x0_c = generator.denoiser.x0(z, t, graph)
    x0_u = generator.denoiser.x0(z, t, replace(graph, cond=torch.zeros_like(graph.cond)))
    torch.testing.assert_close(x0["coords"], x0_u["coords"] + 2.5 * (x0_c["coords"] - x0_u["coords"]))
    for f in generator.fields[1:]:
        torch.testing.assert_close(x0[f.name], mix_class_logits(x0_c[f.name], x0_u[f.name], 2.5, f))
        assert not torch.allclose(x0_c[f.name], x0_u[f.name]), f.name  # the condition reaches every field
    low, high = (_plan_molecules(model, GuidanceSpec(targets={"mu": mu}, guidance_scale=2.0)) for mu in (0.5, 6.0))
    assert low.has_bonds and not _same(low, high)
