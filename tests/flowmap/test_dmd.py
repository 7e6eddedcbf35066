"""Distribution-matching distillation: no push where the sample score already is the teacher's, a
one-jump generator pulled to Gaussian data, jumps that start where the γ = 1 sampler hands them
their input, and the objective in the training loop (its sample score saved and resumed with the
rest of the state)."""

from types import SimpleNamespace

import pytest
import torch
from flowmap_toy import ToyEpsNet, ToyFlowNet, gaussian_batch

from moldiff.config import FlowMapRunConfig, load_config
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.gaussian import GaussianData
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import MolGraph
from moldiff.errors import MoldiffError
from moldiff.flowmap.dmd import SampleScore, distribution_matching_loss, simulated_starts
from moldiff.flowmap.losses import GRID_JUMPS, grid_steps
from moldiff.flowmap.model import FlowMapModel
from moldiff.flowmap.train import train_flowmap
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train

SCHEDULE = make_schedule("polynomial")  # σ > 0 at t = 0, as the x0 parameterisation needs
DATA = GaussianData(torch.tensor([2.0, -1.0]), 1.0, std_h=0.5)
DIFFUSION = SimpleNamespace(view="variational", type_loss_weight=1.0)
TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=16", "tracking.enabled=false",
        "train.threads=1"]  # fmt: skip


def test_grid_starts_are_jump_starts_of_the_grids():
    k, j = grid_steps(4000, generator=torch.Generator().manual_seed(0))
    s = j / k
    allowed = {j / k for k in GRID_JUMPS for j in range(1, k + 1)}
    assert set(s.tolist()) <= allowed and 0.4 < float((s == 1).float().mean()) < 0.55
    k, j = grid_steps(4000, grids=(4,), generator=torch.Generator().manual_seed(0))  # one grid: its jumps alike
    assert set(k.tolist()) == {4.0} and all(0.2 < float((j == i).float().mean()) < 0.3 for i in range(1, 5))


class ConstantJump(torch.nn.Module):
    """A "flow map" whose jump to the data always lands on atom features ``value`` at the origin; it
    records what it was asked."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value, self.calls = value, []

    def forward(self, z, s, t, graph):
        self.calls.append((s.clone(), graph.num_graphs))
        return z.with_values(coords=torch.zeros_like(z["coords"]), types=torch.full_like(z["types"], self.value))


def test_simulated_starts_are_the_gamma_one_samplers_inputs():
    molecules, atoms = 3000, 4
    graph = MolGraph.from_counts(torch.full((molecules,), atoms))
    k = torch.tensor([4.0, 4.0, 8.0]).repeat(molecules // 3)
    j = torch.tensor([4.0, 2.0, 1.0]).repeat(molecules // 3)  # from noise; the 3rd jump of 4; the last of 8
    model = ConstantJump(2.0)
    like = DATA.state(torch.zeros(molecules * atoms, 5), graph)
    z = simulated_starts(model, k, j, graph, SCHEDULE, like, torch.float32, torch.Generator().manual_seed(0))
    # each round jumps only the molecules still above their start: 2/3 of them twice, then 1/3 five times more
    assert [n for _, n in model.calls] == [2000, 2000] + [1000] * 5
    assert sorted(set(model.calls[-1][0].tolist())) == [2 / 8]  # the last jump taken starts at (j + 1)/K
    alpha_0 = float(SCHEDULE(torch.zeros(()))[0])
    feats = z["types"].reshape(molecules, atoms, 2)
    for which, s in ((0, 1.0), (1, 0.5), (2, 1 / 8)):
        alpha, sigma = (float(v) for v in SCHEDULE(torch.tensor(s))[:2])
        mean = 0.0 if s == 1.0 else 2.0 * alpha / alpha_0  # z_1 is prior noise; below it, a re-noised jump
        part = feats[which::3]
        assert abs(float(part.mean()) - mean) < 0.03
        assert abs(float(part.std()) - (1.0 if s == 1.0 else sigma)) < 0.03
    com = z["coords"].reshape(molecules, atoms, 3).mean(1)
    assert float(com.abs().max()) < 1e-5


def test_a_graph_selects_its_molecules_with_their_fields():
    graph = MolGraph.from_counts(torch.tensor([2, 3, 1]), cond=torch.tensor([[0.0], [1.0], [2.0]]))
    graph = type(graph)(graph.batch, graph.ptr, graph.cond, known=torch.arange(6) % 2 == 0)
    sub, atoms = graph.select(torch.tensor([True, False, True]))
    assert sub.num_atoms.tolist() == [2, 1] and sub.cond.flatten().tolist() == [0.0, 2.0]
    assert atoms.tolist() == [True, True, False, False, False, True]
    assert sub.known.tolist() == [True, False, False]


def test_the_sample_score_has_no_weight_decay_pulling_it_off_the_teacher():
    fake = SampleScore(Denoiser(ToyEpsNet(2), SCHEDULE, "eps"), DIFFUSION, lr=1e-3)
    assert all(group["weight_decay"] == 0.0 for group in fake.opt.param_groups)


def test_no_push_where_the_sample_score_is_the_teacher():
    teacher = Denoiser(DATA.network(SCHEDULE), SCHEDULE, "eps")
    model = FlowMapModel(ToyFlowNet(2), "x0", SCHEDULE)
    z0, graph = gaussian_batch(DATA, SCHEDULE, 8, 4, torch.Generator().manual_seed(0))
    losses, samples = distribution_matching_loss(model, z0, graph, SCHEDULE, teacher=teacher,
                                                 fake=SimpleNamespace(denoiser=teacher),
                                                 generator=torch.Generator().manual_seed(1))  # fmt: skip
    losses["loss"].backward()
    assert float(losses["loss"].detach()) == 0.0 and float(losses["dm_grad"]) == 0.0
    assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters())
    assert samples.columns().shape == z0.columns().shape and not samples["coords"].requires_grad


def _one_jump_samples(model, molecules: int = 256) -> torch.Tensor:
    graph = MolGraph.from_counts(torch.full((molecules,), 4))
    z1 = DATA.state(torch.randn(4 * molecules, 5, generator=torch.Generator().manual_seed(2)), graph).project()
    with torch.no_grad():
        return model(z1, torch.ones(molecules), torch.zeros(molecules), graph).columns()


def test_distribution_matching_pulls_a_one_jump_generator_to_the_data():
    torch.manual_seed(0)
    teacher = Denoiser(DATA.network(SCHEDULE), SCHEDULE, "eps")
    fake = SampleScore(Denoiser(ToyEpsNet(2), SCHEDULE, "eps"), DIFFUSION, lr=3e-3)
    model = FlowMapModel(ToyFlowNet(2), "x0", SCHEDULE)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = _one_jump_samples(model)[:, 3:].mean(0)
    assert float((before - DATA.mean_h.float()).abs().max()) > 1.5
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        z0, graph = gaussian_batch(DATA, SCHEDULE, 32, 4, gen)
        losses, samples = distribution_matching_loss(model, z0, graph, SCHEDULE, teacher=teacher, fake=fake,
                                                     generator=gen)  # fmt: skip
        fake.fit(samples, graph, steps=5, generator=gen)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    x = _one_jump_samples(model)
    assert float((x[:, 3:].mean(0) - DATA.mean_h.float()).abs().max()) < 0.5
    assert 0.25 < float(x[:, 3:].std(0).mean()) < 1.0 and 0.5 < float(x[:, :3].std()) < 1.5


def _dmd(tmp_path, name, steps, teacher, *extra):
    return load_config(None, TINY + [f"out_dir={tmp_path}/{name}", f"train.max_steps={steps}", "flowmap.objective=dmd",
                                     f"flowmap.teacher={teacher}", "flowmap.parameterization=x0",
                                     "flowmap.dmd_fake_steps=2", *extra], FlowMapRunConfig)  # fmt: skip


def test_dmd_trains_and_resumes_with_its_sample_score(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=2"]), log=lambda m: None)
    teacher = f"{tmp_path}/teacher/model.pt"
    train_flowmap(_dmd(tmp_path, "full", 4, teacher), log=lambda m: None)
    train_flowmap(_dmd(tmp_path, "part", 2, teacher), log=lambda m: None)
    train_flowmap(_dmd(tmp_path, "part", 4, teacher), resume=True, log=lambda m: None)
    a, b = (load_checkpoint(tmp_path / f"{n}/last.pt") for n in ("full", "part"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["sample_score"]["net"]:
        assert torch.equal(a["sample_score"]["net"][k], b["sample_score"]["net"][k]), k
    assert any(not torch.equal(a["sample_score"]["net"][k], v)  # the sample score did train
               for k, v in load_checkpoint(teacher)["ema"].items())  # fmt: skip


def test_dmd_evaluation_leaves_the_sample_score_alone(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=1"]), log=lambda m: None)
    teacher = f"{tmp_path}/teacher/model.pt"
    evaluated = _dmd(tmp_path, "evaluated", 2, teacher, "train.eval_every=1", "train.eval_samples=3",
                     "flowmap.eval_gamma=1.0", "flowmap.eval_jumps=2")  # fmt: skip
    train_flowmap(evaluated, log=lambda m: None)
    history = load_checkpoint(tmp_path / "evaluated/last.pt")["history"]
    assert sum("val_loss" in h and "sample_atom_stability" in h for h in history) == 2
    train_flowmap(_dmd(tmp_path, "plain", 2, teacher), log=lambda m: None)
    a, b = (load_checkpoint(tmp_path / f"{n}/last.pt")["sample_score"]["net"] for n in ("evaluated", "plain"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_dmd_run_will_not_resume_another_objective(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=1"]), log=lambda m: None)
    teacher = f"{tmp_path}/teacher/model.pt"
    other = load_config(None, TINY + [f"out_dir={tmp_path}/run", "train.max_steps=1", "flowmap.objective=lagrangian",
                                      f"flowmap.teacher={teacher}"], FlowMapRunConfig)  # fmt: skip
    train_flowmap(other, log=lambda m: None)
    with pytest.raises(MoldiffError, match="not a dmd training state"):
        train_flowmap(_dmd(tmp_path, "run", 2, teacher), resume=True, log=lambda m: None)


@pytest.mark.parametrize("tau", ["[0.5,0.2]", "[0.0,0.9]", "[0.1,1.5]"])
def test_bad_noise_range_is_refused(tau):
    with pytest.raises(MoldiffError, match="dmd_tau"):
        load_config(None, ["flowmap.objective=dmd", "flowmap.teacher=qm9-edm", f"flowmap.dmd_tau={tau}"], FlowMapRunConfig)


@pytest.mark.parametrize("grids", ["[]", "[0,4]"])
def test_bad_dmd_grids_are_refused(grids):
    with pytest.raises(MoldiffError, match="dmd_grids"):
        load_config(None, ["flowmap.objective=dmd", "flowmap.teacher=qm9-edm", f"flowmap.dmd_grids={grids}"], FlowMapRunConfig)
