import pytest
import torch
from e3nn import o3

from moldiff.data.com import max_abs_mean
from moldiff.diffusion.state import MolGraph, MolState, coordinate_fields
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import ScheduleValues, make_schedule
from moldiff.flowmap import TIME_COND_FEATURES, FlowMapModel, flowmap_egnn, time_condition
from moldiff.flowmap.model import PARAMETERIZATIONS
from moldiff.nets import EGNN
from moldiff.train.warm_start import warm_start

FEATURES = 4


SCHEDULE = make_schedule("polynomial")


def _net():
    torch.manual_seed(0)
    net = flowmap_egnn(FEATURES, cond_features=1, hidden=16, layers=2).double()
    torch.nn.init.normal_(net.out[1].weight, std=0.5)  # the head starts at zero: wake it up
    for layer in net.layers:
        torch.nn.init.normal_(layer.coord_mlp[-1].weight, std=0.5)
    return net


FLOOR = 0.4  # α* of the floored eps parameterisation: α_s < α* for s above ≈ 0.77 on this schedule
VARIANTS = [(p, 0.0) for p in PARAMETERIZATIONS] + [("eps", FLOOR)]


@pytest.fixture(params=VARIANTS, ids=lambda v: f"{v[0]}-floor{v[1]}" if v[1] else v[0])
def model(request):
    return FlowMapModel(_net(), *request.param[:1], SCHEDULE, request.param[1])


def _inputs(counts=(3, 5, 4)):
    graph = MolGraph.from_counts(torch.tensor(counts), cond=torch.randn(len(counts), 1, dtype=torch.float64))
    z = MolState.from_columns(torch.randn(sum(counts), 3 + FEATURES, dtype=torch.float64), coordinate_fields(FEATURES),
                              graph).project()  # fmt: skip
    s = torch.rand(len(counts), dtype=torch.float64)
    return z, s, s * torch.rand(len(counts), dtype=torch.float64), graph


def test_time_condition_appends_both_times():
    s, t = torch.tensor([0.9, 0.5]), torch.tensor([0.2, 0.5])
    assert torch.equal(time_condition(s, t, None), torch.tensor([[0.2, 0.7], [0.5, 0.0]]))
    assert time_condition(s, t, torch.ones(2, 3)).shape == (2, 3 + TIME_COND_FEATURES)


def test_boundary_condition_is_exact(model):
    z, s, _, graph = _inputs()
    assert torch.equal(model(z, s, s, graph).columns(), z.columns())
    assert model.velocity(z, s, s, graph).columns().abs().max() > 1e-3  # u itself is not zero


def test_jump_keeps_zero_com_and_moves(model):
    z, s, t, graph = _inputs()
    out = model(z, s, t, graph)
    assert max_abs_mean(out["coords"], graph.batch) < 1e-12
    assert (out - z).columns().abs().max() > 1e-3


@pytest.mark.parametrize("det", [1, -1])  # rotations and reflections
def test_jump_is_e3_equivariant(model, det):
    z, s, t, graph = _inputs()
    R = o3.rand_matrix(dtype=torch.float64) * det
    out = model(z, s, t, graph)
    rotated = model(z.with_values(coords=z["coords"] @ R.T), s, t, graph)
    assert torch.allclose(rotated["coords"], out["coords"] @ R.T, atol=1e-10)
    assert torch.allclose(rotated["types"], out["types"], atol=1e-10)


def test_translation_of_the_input_is_removed(model):
    z, s, t, graph = _inputs()
    shift = torch.randn(graph.num_graphs, 3, dtype=z.dtype)[graph.batch]
    out, out_shifted = model.output(z, s, t, graph), model.output(z.with_values(coords=z["coords"] + shift), s, t, graph)
    assert torch.allclose(out.columns(), out_shifted.columns(), atol=1e-10)


def test_shapes_are_checked(model):
    z, s, t, graph = _inputs()
    with pytest.raises(ValueError, match=r"s and t of shape \(3,\)"):
        model(z, s[:2], t, graph)
    with pytest.raises(ValueError, match="a state of N = 12 atoms"):
        model(z.map(lambda v: v[:4]), s, t, graph)


def test_average_velocity_tends_to_the_derivative_of_the_jump_on_the_diagonal(model):
    z, s, _, graph = _inputs()
    h = 1e-6
    with torch.no_grad():
        finite = ((model(z, s, s - h, graph) - z) / -h).columns()
        assert torch.allclose(model.velocity(z, s, s, graph).columns(), finite, atol=1e-4, rtol=1e-4)
        assert torch.allclose(model.velocity(z, s, s - h, graph).columns(), finite, atol=1e-8)


def test_output_for_jump_inverts_the_jump(model):
    z, s, t, graph = _inputs()
    with torch.no_grad():
        target = model(z, s, t, graph)
        assert torch.allclose(model.output_for_jump(z, s, t, target, graph).columns(), model.output(z, s, t, graph).columns(),
                              atol=1e-8)  # fmt: skip


def test_eps_flow_map_warm_started_from_a_denoiser_is_its_ddim_step():
    torch.manual_seed(1)
    teacher = Denoiser(EGNN(FEATURES, hidden=16, layers=2).double(), SCHEDULE, "eps")
    torch.nn.init.normal_(teacher.net.out[1].weight, std=0.5)
    net = flowmap_egnn(FEATURES, hidden=16, layers=2).double()
    assert warm_start(net, teacher.net.state_dict()) == ["embed.weight"]  # the time columns start at zero
    model = FlowMapModel(net, "eps", SCHEDULE)
    z, s, t, graph = _inputs()
    graph = MolGraph(graph.batch, graph.ptr)
    with torch.no_grad():
        x0, eps = teacher.x0_eps(z, s, graph)
        alpha_t, sigma_t = SCHEDULE(t)[:2]
        assert torch.allclose(model(z, s, t, graph).columns(), (alpha_t * x0 + sigma_t * eps).columns(), atol=1e-10)


def _warm_started_pair(alpha_floor: float):
    torch.manual_seed(1)
    teacher = Denoiser(EGNN(FEATURES, hidden=16, layers=2).double(), SCHEDULE, "eps")
    torch.nn.init.normal_(teacher.net.out[1].weight, std=0.5)
    net = flowmap_egnn(FEATURES, hidden=16, layers=2).double()
    warm_start(net, teacher.net.state_dict())
    return teacher, FlowMapModel(net, "eps", SCHEDULE, alpha_floor)


def test_a_floored_eps_map_is_the_teachers_ddim_where_alpha_is_above_the_floor():
    teacher, model = _warm_started_pair(FLOOR)
    z, _, _, graph = _inputs()
    graph = MolGraph(graph.batch, graph.ptr)
    s = torch.tensor([0.3, 0.6, 0.95], dtype=torch.float64)  # α_s ≈ 0.91, 0.64, 0.10
    t = torch.tensor([0.0, 0.2, 0.5], dtype=torch.float64)
    above = (SCHEDULE(s)[0] >= FLOOR)[graph.batch, None]
    assert above[:, 0].tolist() == [True] * 3 + [True] * 5 + [False] * 4
    with torch.no_grad():
        x0, eps = teacher.x0_eps(z, s, graph)
        alpha_t, sigma_t = SCHEDULE(t)[:2]
        ddim = (alpha_t * x0 + sigma_t * eps).columns()
        jump = model(z, s, t, graph).columns()
        torch.testing.assert_close(jump[above[:, 0]], ddim[above[:, 0]], atol=1e-10, rtol=0)
        assert (jump[~above[:, 0]] - ddim[~above[:, 0]]).abs().max() > 1e-2  # below the floor: not DDIM
        # where α ≥ α*, ε̂ is the output itself; everywhere the jump is α_t x̂ + σ_t ε̂
        out = model.output(z, s, t, graph)
        fx0, feps = model.x0_eps(z, s, out, graph)
        assert torch.equal(feps.columns()[above[:, 0]], out.columns()[above[:, 0]])
        torch.testing.assert_close((alpha_t * fx0 + sigma_t * feps).columns(), jump, atol=1e-10, rtol=0)


def test_the_floor_bounds_the_amplification_of_a_jump_from_noise():
    graph = MolGraph.from_counts(torch.tensor([3]))
    s, t = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    _, plain = _warm_started_pair(0.0)
    _, floored = _warm_started_pair(FLOOR)
    c_plain = plain._coefficients(s, t, graph, torch.float64)[1].abs().max()
    c_floored = floored._coefficients(s, t, graph, torch.float64)[1].abs().max()
    assert c_plain > 100 and c_floored <= 1 / FLOOR


def test_the_diagonal_target_of_a_floored_map_predicts_the_teachers_data():
    teacher, model = _warm_started_pair(FLOOR)
    z, s, _, graph = _inputs()
    graph = MolGraph(graph.batch, graph.ptr)
    s = torch.tensor([0.2, 0.8, 0.9], dtype=torch.float64)  # above and below the floor
    with torch.no_grad():
        target = model.diagonal_output(teacher, z, s, graph)
        x0, _ = model.x0_eps(z, s, target, graph)
        torch.testing.assert_close(x0.columns(), teacher.x0(z, s, graph).columns(), atol=1e-9, rtol=1e-9)
        first = graph.batch == 0  # s = 0.2: above the floor, the target is the teacher's ε̂ itself
        assert torch.equal(target.columns()[first], teacher.eps(z, s, graph).columns()[first])


def test_an_alpha_floor_is_only_for_the_eps_parameterization():
    with pytest.raises(ValueError, match="alpha_floor belongs"):
        FlowMapModel(_net(), "x0", SCHEDULE, 0.3)
    with pytest.raises(ValueError, match="alpha_floor must lie"):
        FlowMapModel(_net(), "eps", SCHEDULE, 1.0)


def test_schedule_based_parameterizations_need_a_vp_schedule():
    with pytest.raises(ValueError, match="needs the schedule"):
        FlowMapModel(_net(), "x0")
    def exact_interpolation(t):  # x_t = (1 − t) x_0 + t ε: no signal at t = 1, no noise at t = 0
        return ScheduleValues(1 - t, t, -torch.ones_like(t), torch.ones_like(t))

    with pytest.raises(ValueError, match="α > 0 at t = 1"):
        FlowMapModel(_net(), "eps", exact_interpolation)
    with pytest.raises(ValueError, match="unknown flow-map parameterization"):
        FlowMapModel(_net(), "magic")
