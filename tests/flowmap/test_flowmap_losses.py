"""Flow-map objectives on a Gaussian toy whose flow map is known exactly (``GaussianData.flow``)."""

import pytest
import torch
from flowmap_toy import ToyFlowNet, gaussian_batch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.flowmap import FlowMapModel
from moldiff.flowmap.losses import (GRID_JUMPS, flowmap_loss, noised, pseudo_huber, sample_times,
                                    teacher_average_velocity, teacher_dpm_solve)

SCHEDULE = make_schedule("cosine")
DATA = GaussianData(torch.tensor([0.5, -0.5]), std=1.0, std_h=0.5)
TEACHER = Denoiser(DATA.network(SCHEDULE), SCHEDULE, "eps")
# run (objective, parameterisation) -> (training steps, tolerance on u(z, t, t) vs the teacher (relative;
# loose where the coordinate velocity is near zero, as at t = 0.9 here),
# tolerance on 1–4 jumps vs the exact flow)
BUDGET = {"teacher-ode": (300, 0.1, 0.08), "lagrangian": (300, 0.1, 0.1), "meanflow": (800, 0.4, 0.2),
          "teacher-ode/x0": (300, 0.2, 0.08), "lagrangian/x0": (300, 0.1, 0.1)}  # fmt: skip
OPTIONS = {"teacher-ode/x0": {"teacher_solver": "dpmpp-2m", "substeps": 12, "grid_share": 0.3, "huber": 1.0}}


def _train(run: str) -> FlowMapModel:
    objective, _, parameterization = run.partition("/")
    torch.manual_seed(0)
    model = FlowMapModel(ToyFlowNet(2), parameterization or "velocity", SCHEDULE)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(BUDGET[run][0]):
        z0, graph = gaussian_batch(DATA, SCHEDULE, 32, 4, g)
        loss = flowmap_loss(objective, model, z0, graph, SCHEDULE, teacher=TEACHER, generator=g,
                            **OPTIONS.get(run, {}))["loss"]  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


@pytest.fixture(scope="module", params=sorted(BUDGET))
def trained(request):
    return request.param, _train(request.param)


def _rel(a: MolState, b: MolState) -> float:
    return float((a - b).columns().norm() / b.columns().norm())


def test_times_are_ordered_with_a_diagonal_share():
    s, t = sample_times(4000, diagonal=0.25, generator=torch.Generator().manual_seed(0))
    assert (t <= s).all() and (s <= 1).all() and (t >= 0).all()
    assert abs(float((t == s).float().mean()) - 0.25) < 0.03


def test_grid_share_draws_the_jumps_of_the_uniform_grids():
    s, t = sample_times(4000, diagonal=0.1, grid_share=0.5, generator=torch.Generator().manual_seed(0))
    grid_pairs = {(j / k, (j - 1) / k) for k in GRID_JUMPS for j in range(1, k + 1)}
    on_grid = torch.tensor([(a, b) in grid_pairs for a, b in zip(s.tolist(), t.tolist())])
    assert abs(float(on_grid.float().mean()) - 0.5) < 0.03
    assert abs(float((t == s).float().mean()) - 0.1) < 0.02
    assert (t <= s).all()


def test_pseudo_huber_is_quadratic_near_zero_and_linear_far_out():
    e2 = torch.tensor([1e-6, 1e-2, 1e4])
    out = pseudo_huber(e2, 1.0)
    assert torch.allclose(out[:2], e2[:2], rtol=1e-2)
    assert abs(float(out[2]) - 2 * 100) < 2.5  # 2δ|e| − 2δ²
    assert torch.equal(pseudo_huber(e2, 0.0), e2)


def test_teacher_dpm_solve_follows_the_exact_flow_with_few_calls():
    g = torch.Generator().manual_seed(1)
    z0, graph = gaussian_batch(DATA, SCHEDULE, 8, 4, g)
    s = torch.tensor([0.95, 0.8, 0.6, 0.5, 0.9, 0.3, 0.7, 0.4])
    t = torch.tensor([0.0, 0.2, 0.1, 0.5, 0.45, 0.05, 0.7, 0.0])  # per-molecule intervals, two empty
    z_s, _ = noised(z0, s, graph, SCHEDULE, g)
    exact = DATA.flow(z_s.to(torch.float64), s, t, graph, SCHEDULE).to(torch.float32)
    TEACHER.nfe = 0
    z_t = teacher_dpm_solve(TEACHER, z_s, s, t, graph, 12)
    assert TEACHER.nfe == 12
    assert _rel(z_t, exact) < 1e-2  # second order: 6 steps 1.4e-2, 12 steps 7.7e-3, 24 steps 2.3e-3
    same = (s == t)[graph.batch]
    assert torch.allclose(z_t.columns()[same], z_s.columns()[same], atol=1e-6)


def test_teacher_average_velocity_is_the_velocity_on_the_diagonal_and_the_flow_off_it():
    g = torch.Generator().manual_seed(1)
    z0, graph = gaussian_batch(DATA, SCHEDULE, 8, 4, g)
    s = torch.full((8,), 0.8)
    z_s, _ = noised(z0, s, graph, SCHEDULE, g)
    on_diag = teacher_average_velocity(TEACHER, z_s, s, s, graph, 3)
    assert torch.allclose(on_diag.columns(), TEACHER.velocity(z_s, s, graph).columns(), atol=1e-5)
    t = torch.full((8,), 0.2)
    u = teacher_average_velocity(TEACHER, z_s, s, t, graph, 16)
    exact = DATA.flow(z_s.to(torch.float64), s, t, graph, SCHEDULE).to(torch.float32)
    assert _rel(z_s + (t - s) * u, exact) < 1e-3


def test_distilled_diagonal_matches_the_teacher_velocity(trained):
    objective, model = trained
    g = torch.Generator().manual_seed(2)
    z0, graph = gaussian_batch(DATA, SCHEDULE, 64, 4, g)
    for time in (0.9, 0.5, 0.1):
        t = torch.full((64,), time)
        z_t, _ = noised(z0, t, graph, SCHEDULE, g)
        with torch.no_grad():
            u = model.velocity(z_t, t, t, graph)
        assert _rel(u, TEACHER.velocity(z_t, t, graph)) < BUDGET[objective][1], (objective, time)
        if model.parameterization == "x0":  # on the diagonal x̂ = α z + σ F is the teacher's data prediction
            alpha, sigma = SCHEDULE(t)[:2]
            with torch.no_grad():
                x0 = alpha * z_t + sigma * model.output(z_t, t, t, graph)
            assert _rel(x0, TEACHER.x0(z_t, t, graph)) < BUDGET[objective][1], (objective, time)


@pytest.mark.parametrize("jumps", [1, 2, 4])
def test_few_jumps_follow_the_exact_flow_map(trained, jumps):
    objective, model = trained
    g, b = torch.Generator().manual_seed(3), 64
    graph = MolGraph.from_counts(torch.full((b,), 4))
    unit = DATA.state(torch.randn(4 * b, DATA.dim, generator=g), graph).project()
    z = DATA.marginal_sample(torch.ones(b), graph, unit, SCHEDULE).to(torch.float32)
    exact = DATA.flow(z.to(torch.float64), torch.ones(b), torch.zeros(b), graph, SCHEDULE).to(torch.float32)
    times = torch.linspace(1, 0, jumps + 1)
    with torch.no_grad():
        for i in range(jumps):
            z = model(z, times[i].expand(b), times[i + 1].expand(b), graph)
    assert _rel(z, exact) < BUDGET[objective][2], objective


def test_distillation_needs_a_teacher_and_names_are_checked():
    z0, graph = gaussian_batch(DATA, SCHEDULE, 2, 3, torch.Generator().manual_seed(0))
    model = FlowMapModel(ToyFlowNet(2))
    with pytest.raises(ValueError, match="distils a teacher"):
        flowmap_loss("lagrangian", model, z0, graph, SCHEDULE)
    with pytest.raises(ValueError, match="unknown flow-map objective 'magic'"):
        flowmap_loss("magic", model, z0, graph, SCHEDULE)


@pytest.mark.parametrize("run", sorted(BUDGET))
def test_objectives_train_an_egnn_flow_map_on_conditioned_molecules(run):
    from moldiff.flowmap import flowmap_egnn
    from moldiff.nets import EGNN

    torch.manual_seed(0)
    graph = MolGraph.from_counts(torch.tensor([3, 5]), cond=torch.randn(2, 2))
    z0 = DATA.state(torch.randn(8, 3 + 2), graph).project()
    teacher = Denoiser(EGNN(2, hidden=8, layers=1, cond_features=2), SCHEDULE, "eps")
    objective, _, parameterization = run.partition("/")
    model = FlowMapModel(flowmap_egnn(2, cond_features=2, hidden=8, layers=1), parameterization or "velocity", SCHEDULE)
    out = flowmap_loss(objective, model, z0, graph, SCHEDULE, teacher=teacher, generator=torch.Generator().manual_seed(0),
                       **OPTIONS.get(run, {}))  # fmt: skip
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and set(out) == {"loss", "loss_pos", "loss_type"}
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
