"""bench/bench_flowmap_jumps.py: where a flow map's error is, jump by jump."""

import pytest
import torch

from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph, MolState, coordinate_fields
from moldiff.flowmap import FlowMapModel, flowmap_egnn
from moldiff.nets import EGNN
from moldiff.train.warm_start import warm_start

SCHEDULE = make_schedule("polynomial")


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("bench_flowmap_jumps")


def test_a_map_that_is_the_teachers_ddim_scores_as_one_teacher_call(bench):
    torch.manual_seed(0)
    teacher = Denoiser(EGNN(2, hidden=16, layers=2).double(), SCHEDULE, "eps")
    torch.nn.init.normal_(teacher.net.out[1].weight, std=0.5)
    net = flowmap_egnn(2, hidden=16, layers=2).double()
    warm_start(net, teacher.net.state_dict())
    ddim = FlowMapModel(net, "eps", SCHEDULE)
    graph = MolGraph.from_counts(torch.tensor([3, 5]))
    z0 = MolState.from_columns(torch.randn(8, 3 + 2, dtype=torch.float64), coordinate_fields(2), graph).project()
    rows = bench.jump_errors({"ddim": ddim}, teacher, z0, graph, [1, 2], reference_substeps=6, seed=0)
    assert [(r["K"], r["j"]) for r in rows] == [(1, 1), (2, 2), (2, 1)]
    for r in rows:
        assert r["ddim"] == pytest.approx(r["teacher, 1 call (DDIM)"], rel=1e-6)
        assert r["teacher, 8 calls (the target)"] < r["teacher, 1 call (DDIM)"]  # more calls, closer to the ODE
    assert "| 2 | 0.500 → 0.000 |" in bench.markdown(rows, ["ddim"], "t")
