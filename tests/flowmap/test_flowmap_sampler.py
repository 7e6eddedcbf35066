import pytest
import torch
from e3nn import o3

from moldiff.data.com import max_abs_mean
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MoleculeNoise
from moldiff.errors import MoldiffError
from moldiff.flowmap import FlowMapModel, FlowMapSampler, flowmap_egnn
from moldiff.solvers import expected_nfe, get_solver, solver_times

SCHEDULE = make_schedule("cosine")
DATA = GaussianData(torch.tensor([0.5, -0.5]), std=1.0, std_h=0.5)


class ExactGaussianFlowMap:
    """The exact flow map of ``DATA``, with the sampler interface."""

    schedule = SCHEDULE
    nfe = 0

    def jump(self, z, s, t, graph):
        self.nfe += 1
        return DATA.flow(z, s, t, graph, SCHEDULE)


def _prior(seeds, counts, dtype=torch.float64):
    graph = MolGraph.from_counts(torch.tensor(counts))
    noise = MoleculeNoise(seeds, graph, DATA.fields, dtype=dtype)
    return noise.randn(), graph, noise


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("jumps", [1, 2, 4])
def test_exact_flow_map_samples_the_data_at_any_k_and_gamma(jumps, gamma):
    z, graph, noise = _prior(list(range(300)), [8] * 300)
    flow = ExactGaussianFlowMap()
    out = get_solver("flow-map", gamma=gamma)(flow, z, solver_times("flow-map", jumps, SCHEDULE), graph, noise)
    assert flow.nfe == jumps == expected_nfe("flow-map", jumps)
    feats, coords = out["types"], out["coords"]
    assert torch.allclose(feats.mean(0), DATA.mean_h, atol=0.03)
    assert torch.allclose(feats.std(0), torch.full((2,), DATA.std_h, dtype=torch.float64), rtol=0.05)
    assert abs(float(coords.std()) / (DATA.std * (7 / 8) ** 0.5) - 1) < 0.05
    assert max_abs_mean(coords, graph.batch) < 1e-10


def _egnn_sampler():
    torch.manual_seed(0)
    net = flowmap_egnn(2, hidden=16, layers=2).double()
    torch.nn.init.normal_(net.out[1].weight, std=0.3)
    return FlowMapSampler(FlowMapModel(net), SCHEDULE)


@pytest.mark.parametrize("gamma", [0.0, 0.7])
def test_sampling_is_equivariant_seeded_and_counts_nfe(gamma):
    seeds, counts, jumps = [1, 2, 3], [3, 5, 4], 4
    sampler, solver = _egnn_sampler(), get_solver("flow-map", gamma=gamma)
    times = solver_times("flow-map", jumps, SCHEDULE)
    z, graph, noise = _prior(seeds, counts)
    out = solver(sampler, z, times, graph, noise)
    assert sampler.nfe == jumps
    assert max_abs_mean(out["coords"], graph.batch) < 1e-10
    if gamma == 0.0:  # deterministic: the rotated (or reflected) prior gives the rotated molecules
        for det in (1, -1):
            R = o3.rand_matrix(dtype=torch.float64) * det
            z, graph, noise = _prior(seeds, counts)
            rotated = solver(sampler, z.with_values(coords=z["coords"] @ R.T), times, graph, noise)
            assert torch.allclose(rotated["coords"], out["coords"] @ R.T, atol=1e-8)
            assert torch.allclose(rotated["types"], out["types"], atol=1e-8)
    # a molecule regenerates alone from its seed, re-noising included
    alone_z, alone_graph, alone_noise = _prior([2], [5])
    alone = solver(sampler, alone_z, times, alone_graph, alone_noise)
    assert torch.allclose(alone.columns(), out.columns()[graph.ptr[1] : graph.ptr[2]], atol=1e-8)


def test_a_denoiser_takes_euler_jumps():
    z, graph, noise = _prior([0, 1], [4, 6])
    times = solver_times("flow-map", 5, SCHEDULE)
    outs = []
    for name in ("flow-map", "euler"):
        denoiser = Denoiser(DATA.network(SCHEDULE), SCHEDULE, "eps")
        outs.append(get_solver(name)(denoiser, z, times, graph, noise))
        assert denoiser.nfe == 5
    assert torch.allclose(*(out.columns() for out in outs), atol=1e-12)


def test_gamma_is_checked():
    z, graph, noise = _prior([0], [3])
    with pytest.raises(MoldiffError, match="gamma must be in"):
        get_solver("flow-map", gamma=1.5)(ExactGaussianFlowMap(), z, torch.tensor([1.0, 0.0]), graph, noise)


def _x_sampler(parameterization, alpha_floor: float = 0.0):
    torch.manual_seed(0)
    net = flowmap_egnn(2, hidden=16, layers=2).double()
    torch.nn.init.normal_(net.out[1].weight, std=0.3)
    return FlowMapSampler(FlowMapModel(net, parameterization, SCHEDULE, alpha_floor), SCHEDULE)


class _PassThrough:
    """A guidance wrapper that changes nothing."""

    def __init__(self, inner):
        self.inner = inner

    def x0_eps(self, z, t, graph):
        return self.inner.x0_eps(z, t, graph)


@pytest.mark.parametrize("parameterization, alpha_floor", [("x0", 0.0), ("eps", 0.0), ("eps", 0.4)])
def test_guided_jumps_are_the_flow_map_when_nothing_is_guided(parameterization, alpha_floor):
    sampler, solver = _x_sampler(parameterization, alpha_floor), get_solver("flow-map")
    times = solver_times("flow-map", 4, SCHEDULE)
    z, graph, noise = _prior([1, 2], [4, 6])
    plain = solver(sampler, z, times, graph, noise)
    sampler.nfe = 0
    guided = solver(_PassThrough(sampler), z, times, graph, noise)
    assert sampler.nfe == 4 and sampler.horizon is None
    torch.testing.assert_close(guided.columns(), plain.columns(), atol=1e-10, rtol=0)


def test_a_scaffold_is_kept_exactly_by_flow_map_jumps():
    from moldiff.guidance.inpaint import Scaffold, inpaint_solver

    scaffold = Scaffold(torch.tensor([[0.0, 0.0, 0.0], [1.4, 0.0, 0.0]], dtype=torch.float64), torch.tensor([0, 1]))
    sampler = _x_sampler("x0")
    z, graph, noise = _prior([1, 2, 3], [4, 6, 5])
    sample = inpaint_solver(get_solver("flow-map"), scaffold, 0.25, jump=2, resamples=2)
    out = sample(sampler, z, solver_times("flow-map", 4, SCHEDULE), graph, noise)
    block = out["coords"][scaffold.mask(graph)].reshape(3, 2, 3)
    torch.testing.assert_close(block[:, 1] - block[:, 0], torch.tensor([1.4, 0.0, 0.0], dtype=torch.float64).expand(3, 3),
                               atol=1e-10, rtol=0)  # fmt: skip
    assert out["types"][scaffold.mask(graph)].argmax(1).tolist() == [0, 1] * 3
    assert max_abs_mean(out["coords"], graph.batch) < 1e-10


def test_guidance_of_a_velocity_flow_map_is_refused():
    z, graph, noise = _prior([1], [4])
    with pytest.raises(MoldiffError, match="x0 or eps parameterisation"):
        get_solver("flow-map")(_PassThrough(_egnn_sampler()), z, solver_times("flow-map", 2, SCHEDULE), graph, noise)
