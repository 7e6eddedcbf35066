"""Regressor (energy) guidance: the gradient is zero-CoM and rotation-equivariant, the guided
denoiser stays equivariant, and on a Gaussian toy the guidance moves samples where it should."""

import pytest
import torch
from e3nn import o3

from moldiff.data.com import max_abs_mean
from moldiff.data.elements import QM9_ELEMENTS
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState, coordinate_fields
from moldiff.errors import MoldiffError
from moldiff.guidance.condition import PropertyNorm
from moldiff.guidance.regressor import GuideTerm, RegressorGuidedDenoiser, parse_guide
from moldiff.nets import EGNN, PropertyPredictor
from moldiff.property_model import PropertyModel
from moldiff.solvers import get_solver, solver_times

from guidance_toys import feature_mean


def _equivariance_setup():
    torch.manual_seed(0)
    schedule = make_schedule("polynomial")
    predictor = PropertyPredictor(5, 2, hidden=16, layers=2).double()
    norm = PropertyNorm(("qed", "logp"), (0.5, 1.0), (0.2, 2.0))
    model = PropertyModel(predictor, schedule, QM9_ELEMENTS, 0.25, norm)
    net = EGNN(5, hidden=16, layers=2).double()
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    terms = [GuideTerm("qed", direction=1), GuideTerm("logp", target=2.5, weight=0.5)]
    guided = RegressorGuidedDenoiser(Denoiser(net, schedule), model, terms, scale=3.0)
    graph = MolGraph.from_counts(torch.tensor([4, 6, 5]))
    z = MoleculeNoise([1, 2, 3], graph, coordinate_fields(5), dtype=torch.float64).randn()
    return guided, z, graph


def _rotate(z, rot):
    return z.with_values(coords=z["coords"] @ rot.T)


def test_gradient_is_zero_com_and_rotation_equivariant():
    guided, z, graph = _equivariance_setup()
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    grad = guided.gradient(z, t, graph)
    assert grad.columns().abs().max() > 1e-6  # a real signal, not a vacuous zero
    assert max_abs_mean(grad["coords"], graph.batch, 3) < 1e-12
    for _ in range(3):
        rot = o3.rand_matrix().double()
        if torch.rand(()) < 0.5:
            rot = -rot  # reflections too: E(3)
        grad_rot = guided.gradient(_rotate(z, rot), t, graph)
        torch.testing.assert_close(grad_rot.columns(), _rotate(grad, rot).columns())


def test_guided_denoiser_stays_equivariant():
    guided, z, graph = _equivariance_setup()
    t = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
    rot = o3.rand_matrix().double()
    eps = guided.eps(z, t, graph)
    torch.testing.assert_close(guided.eps(_rotate(z, rot), t, graph).columns(), _rotate(eps, rot).columns())
    assert max_abs_mean(eps["coords"], graph.batch, 3) < 1e-12
    # the guidance changes ε̂ by exactly σ ∇E, capped per molecule
    alpha, sigma = guided.schedule(t)[:2]
    tilt = sigma * guided.gradient(z, t, graph)
    torch.testing.assert_close((eps - guided.inner.eps(z, t, graph)).columns(), guided.tilt(tilt, graph, sigma / alpha).columns())


def test_the_shift_of_x0_is_capped_per_molecule_and_a_broken_tilt_dropped():
    guided, z, graph = _equivariance_setup()
    shift = torch.randn(z.columns().shape, dtype=z.dtype) * torch.tensor([1e-3, 1e4, 1.0], dtype=z.dtype)[graph.batch, None]
    shift[-1, 0] = float("inf")  # the third molecule's gradient blew up
    state = MolState.from_columns(shift, z.specs, graph)
    capped = guided.tilt(state, graph).columns()
    assert torch.equal(capped[:4], shift[:4])  # RMS 1e-3: untouched
    big = capped[4:10]
    torch.testing.assert_close(big, shift[4:10] * (big[0, 0] / shift[4, 0]))  # same direction,
    torch.testing.assert_close(big.pow(2).mean().sqrt(), torch.tensor(1.0, dtype=z.dtype))  # RMS 1
    halved = guided.tilt(state, graph, x0_gain=2.0).columns()[4:10]  # x̂₀ moves by twice the tilt: half the tilt
    torch.testing.assert_close(halved.pow(2).mean().sqrt(), torch.tensor(0.5, dtype=z.dtype))
    assert torch.equal(capped[10:], torch.zeros_like(capped[10:]))
    guided.max_shift = None
    assert torch.equal(guided.tilt(state, graph).columns(), shift)
    with pytest.raises(MoldiffError, match="cap must be positive"):
        RegressorGuidedDenoiser(guided.inner, guided.model, guided.terms, max_shift=0.0)


class MeanFeature:
    """A toy "predictor": the mean of feature column 0 over each molecule, normalised as is."""

    norm = PropertyNorm(("qed",), (0.0,), (1.0,))

    def __call__(self, z, t, graph, schedule=None):
        total = torch.zeros(graph.num_graphs, dtype=z.dtype).index_add_(0, graph.batch, z["types"][:, 0])
        return (total / graph.num_atoms.to(z.dtype))[:, None]


def _sample(terms, scale, solver="ddpm", molecules=150):
    schedule = make_schedule("polynomial")
    data = GaussianData(torch.tensor([0.5, -0.5], dtype=torch.float64), 0.5)
    denoiser = Denoiser(data.network(schedule), schedule, "eps")
    graph = MolGraph.from_counts(torch.full((molecules,), 4))
    noise = MoleculeNoise(list(range(molecules)), graph, data.fields, dtype=torch.float64)
    guided = RegressorGuidedDenoiser(denoiser, MeanFeature(), terms, scale) if terms else denoiser
    return get_solver(solver)(guided, noise.randn(), solver_times(solver, 40, schedule), graph, noise)


def test_target_guidance_moves_the_mean_toward_the_target():
    base = feature_mean(_sample([], 0.0))[0]
    guided = feature_mean(_sample([GuideTerm("qed", target=2.0)], 3.0))
    assert abs(base - 0.5) < 0.05
    assert 0.9 < guided[0] < 2.0  # pulled from 0.5 toward 2.0, not past it
    assert abs(guided[1] + 0.5) < 0.05  # the unguided column stays put


@pytest.mark.parametrize("solver", ["ddpm", "ddim", "heun", "dpmpp-2m", "pc", "euler"])
def test_direction_guidance_works_with_every_solver(solver):
    up = feature_mean(_sample([GuideTerm("qed", direction=1)], 1.0, solver, molecules=40))[0]
    down = feature_mean(_sample([GuideTerm("qed", direction=-1)], 1.0, solver, molecules=40))[0]
    assert torch.isfinite(torch.tensor([up, down])).all()
    assert down < 0.5 - 0.1 and up > 0.5 + 0.1


def test_guide_terms_parse_and_check():
    assert parse_guide("qed=max") == GuideTerm("qed", direction=1)
    assert parse_guide("SA=min:0.5") == GuideTerm("sa", direction=-1, weight=0.5)
    assert parse_guide("gap=4.5eV:2") == GuideTerm("gap", target=4500.0, weight=2.0)
    assert parse_guide("logp=2.5") == GuideTerm("logp", target=2.5)
    for bad in ["qed", "qed=max:heavy", "potency=max", "gap=4.5 furlongs"]:
        with pytest.raises(MoldiffError):
            parse_guide(bad)
    with pytest.raises(MoldiffError, match="not one of this model"):
        RegressorGuidedDenoiser(None, MeanFeature(), [GuideTerm("logp", direction=1)])


def test_predictor_reads_another_schedule_at_equal_log_snr():
    torch.manual_seed(0)
    own, other = make_schedule("polynomial"), make_schedule("cosine")
    model = PropertyModel(PropertyPredictor(5, 1, hidden=8, layers=1).double(), own, QM9_ELEMENTS, 0.25,
                          PropertyNorm(("qed",), (0.0,), (1.0,)))  # fmt: skip
    graph = MolGraph.from_counts(torch.tensor([3, 4]))
    z = MolState.from_columns(torch.randn(7, 8, dtype=torch.float64), coordinate_fields(5), graph)
    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    t_own = own.t_from_log_snr(other.log_snr(t))
    scale = (own(t_own).alpha / other(t).alpha)[graph.batch, None]
    torch.testing.assert_close(model(z, t, graph, other), model.net(z["coords"] * scale, z["types"] * scale, t_own,
                                                                    graph.batch, graph.ptr))  # fmt: skip
    torch.testing.assert_close(model(z, t, graph, own), model.net(z["coords"], z["types"], t, graph.batch, graph.ptr))
