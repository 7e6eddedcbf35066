"""Properties every solver must have with a real (small, random) network: a whole sampling run is
E(3)-equivariant, coordinates stay zero-CoM, the NFE is exact, and a molecule regenerates alone
from its seed."""

import pytest
import torch
from e3nn import o3

from moldiff.data.com import max_abs_mean
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise, coordinate_fields
from moldiff.errors import MoldiffError
from moldiff.nets.egnn import EGNN
from moldiff.solvers import SOLVERS, expected_nfe, get_solver, intervals_for, solver_options, solver_times

FEATURES = 4


class NoisePlusEGNN(torch.nn.Module):
    """ε̂ = z + 0.1 · EGNN(z): equivariant like the EGNN, but its samples stay of order one (a random
    EGNN alone predicts an ε̂ far from z, and x̂₀ = (z − σ ε̂)/α then explodes at t = 1)."""

    def __init__(self):
        super().__init__()
        self.egnn = EGNN(in_features=FEATURES, hidden=16, layers=2)

    def forward(self, x, h, t, batch, ptr, cond=None):
        dx, dh = self.egnn(x, h, t, batch, ptr, cond)
        return x + 0.1 * dx, h + 0.1 * dh


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = NoisePlusEGNN().double()
    for p in model.parameters():  # untrained output layers start at zero: make them non-trivial
        p.data.add_(0.1 * torch.randn_like(p))
    return model


class RotatedNoise(MoleculeNoise):
    """The same noise stream with its coordinate columns rotated by ``R``."""

    def __init__(self, seeds, graph, R):
        super().__init__(seeds, graph, coordinate_fields(FEATURES), dtype=torch.float64)
        self.R = R

    def randn(self):
        z = super().randn()
        return z.with_values(coords=z["coords"] @ self.R.T)


def _sample(net, name, seeds, counts, steps=6, R=None, prediction="eps", schedule="polynomial"):
    schedule = make_schedule(schedule)
    graph = MolGraph.from_counts(torch.tensor(counts))
    fields = coordinate_fields(FEATURES)
    noise = RotatedNoise(seeds, graph, R) if R is not None else MoleculeNoise(seeds, graph, fields, dtype=torch.float64)
    denoiser = Denoiser(net, schedule, prediction)
    z = noise.randn()
    out = get_solver(name)(denoiser, z, solver_times(name, steps, schedule), graph, noise)
    return out, graph, denoiser


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_whole_run_is_equivariant_and_zero_com(net, name):
    seeds, counts = [1, 2, 3], [3, 5, 4]
    out, graph, _ = _sample(net, name, seeds, counts)
    assert max_abs_mean(out["coords"], graph.batch) < 1e-10
    for det in (1, -1):  # rotations and reflections
        R = o3.rand_matrix(dtype=torch.float64) * det
        rotated, _, _ = _sample(net, name, seeds, counts, R=R)
        assert torch.allclose(rotated["coords"], out["coords"] @ R.T, atol=1e-8)
        assert torch.allclose(rotated["types"], out["types"], atol=1e-8)


@pytest.mark.parametrize("steps", [7, 12])
@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_nfe_is_exact_and_within_budget(net, name, steps):
    _, _, denoiser = _sample(net, name, [0, 1], [4, 6], steps=steps)
    nfe = expected_nfe(name, steps)
    if nfe is None:  # adaptive: one first evaluation, then 3 per Bogacki–Shampine step (FSAL)
        assert denoiser.nfe >= 4 and (denoiser.nfe - 1) % 3 == 0
    else:
        assert denoiser.nfe == nfe <= steps


def test_nfe_budget_arithmetic():
    assert [expected_nfe("heun", k) for k in (1, 2, 3, 10, 11)] == [1, 1, 3, 9, 11]
    assert intervals_for("heun", 10) == 5
    assert expected_nfe("pc", 11) == 10 and expected_nfe("pc", 11, corrector_steps=2) == 9
    assert len(solver_times("pc", 10, make_schedule("polynomial"))) == 6


@pytest.mark.parametrize("name", ["ddpm", "pc", "euler-maruyama", "adaptive"])
def test_a_molecule_regenerates_alone_from_its_seed(net, name):
    batch, graph, _ = _sample(net, name, [5, 6, 7], [3, 5, 4])
    alone, _, _ = _sample(net, name, [6], [5])
    assert torch.allclose(alone.columns(), batch.columns()[graph.ptr[1] : graph.ptr[2]], atol=1e-8)


@pytest.mark.parametrize("prediction", ["x0", "score", "velocity"])
def test_solvers_run_on_every_prediction_kind(net, prediction):
    # cosine: velocity prediction needs dλ/dt ≠ 0 at both ends, which the polynomial schedule lacks
    for name in SOLVERS:
        out, graph, _ = _sample(net, name, [0], [5], steps=4, prediction=prediction, schedule="cosine")
        assert torch.isfinite(out.columns()).all(), (name, prediction)


def test_options_are_validated_and_bound():
    assert solver_options("ddim") == {"eta": 0.0}
    assert solver_options("euler") == {}
    with pytest.raises(MoldiffError, match="has no option temperature.*eta=0.0"):
        get_solver("ddim", temperature=2)
    with pytest.raises(MoldiffError, match="unknown solver 'magic'"):
        get_solver("magic")
    assert get_solver("ddim", eta=0.5).keywords == {"eta": 0.5}
