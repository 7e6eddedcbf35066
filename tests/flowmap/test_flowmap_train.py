"""``train_flowmap``: both kinds of objective run in the training loop, resume exactly, and the
model file samples through ``load_generator`` with the ``flow-map`` solver."""

import pytest
import torch

from moldiff.config import FlowMapRunConfig, load_config
from moldiff.errors import MoldiffError
from moldiff.flowmap import FlowMapSampler
from moldiff.flowmap.train import train_flowmap
from moldiff.models import load_generator
from moldiff.solvers import get_solver, solver_times
from moldiff.train.checkpoint import load_checkpoint
from moldiff.train.loop import train

TINY = ["data.max_train=64", "model.hidden=16", "model.layers=2", "train.batch_size=8", "train.warmup_steps=2",
        "train.log_every=1000", "train.eval_every=1000", "train.val_molecules=16", "tracking.enabled=false",
        "train.threads=1", "diffusion.schedule=cosine"]  # fmt: skip


def _flowmap(tmp_path, name, steps, *extra):
    return load_config(None, TINY + [f"out_dir={tmp_path}/{name}", f"train.max_steps={steps}", *extra], FlowMapRunConfig)


def test_meanflow_resumes_exactly(tmp_path):
    train_flowmap(_flowmap(tmp_path, "full", 6), log=lambda m: None)
    train_flowmap(_flowmap(tmp_path, "part", 3), log=lambda m: None)
    train_flowmap(_flowmap(tmp_path, "part", 6), resume=True, log=lambda m: None)
    a, b = (load_checkpoint(tmp_path / f"{n}/last.pt")["model"] for n in ("full", "part"))
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("objective", ["teacher-ode", "lagrangian"])
def test_distilled_flow_map_samples_from_its_model_file(tmp_path, objective):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=2"]), log=lambda m: None)
    cfg = _flowmap(tmp_path, "fm", 2, f"flowmap.objective={objective}", f"flowmap.teacher={tmp_path}/teacher/model.pt",
                   "flowmap.substeps=1")  # fmt: skip
    train_flowmap(cfg, log=lambda m: None)
    gen, config, _ = load_generator(str(tmp_path / "fm/model.pt"))
    assert isinstance(gen.denoiser, FlowMapSampler) and config.flowmap.objective == objective
    mols = gen.sample([0, 1], [5, 9], solver=get_solver("flow-map"), times=solver_times("flow-map", 2, gen.denoiser.schedule))
    assert list(mols.n_atoms) == [5, 9] and gen.denoiser.nfe == 2
    assert torch.isfinite(torch.as_tensor(mols.positions)).all()


def test_the_state_records_which_teacher_weights_each_stretch_was_distilled_from(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=2"]), log=lambda m: None)
    teacher = f"{tmp_path}/teacher/model.pt"
    options = ("flowmap.objective=teacher-ode", f"flowmap.teacher={teacher}", "flowmap.substeps=1")
    train_flowmap(_flowmap(tmp_path, "fm", 2, *options), log=lambda m: None)
    train_flowmap(_flowmap(tmp_path, "fm", 3, *options), resume=True, log=lambda m: None)  # the same teacher
    first = load_checkpoint(tmp_path / "fm/last.pt")["teachers"]
    assert len(first) == 1 and first[0]["from_step"] == 0 and first[0]["step"] == 2 and first[0]["model"] == teacher
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=3"]), resume=True,
          log=lambda m: None)  # the teacher trains on: new weights  # fmt: skip
    train_flowmap(_flowmap(tmp_path, "fm", 4, *options), resume=True, log=lambda m: None)
    teachers = load_checkpoint(tmp_path / "fm/last.pt")["teachers"]
    assert [(t["from_step"], t["step"]) for t in teachers] == [(0, 2), (3, 3)]
    assert teachers[0]["sha256"] != teachers[1]["sha256"]


def test_teacher_must_share_the_diffusion(tmp_path):
    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=1"]), log=lambda m: None)
    cfg = _flowmap(tmp_path, "fm", 1, "flowmap.objective=lagrangian", f"flowmap.teacher={tmp_path}/teacher/model.pt",
                   "diffusion.schedule=linear")  # fmt: skip
    with pytest.raises(MoldiffError, match="another diffusion section"):
        train_flowmap(cfg, log=lambda m: None)


@pytest.mark.parametrize("name", ["flowmap_qm9", "flowmap_dmd_qm9"])
def test_the_shipped_distillation_configs_fit_their_built_in_teacher(name):
    from moldiff.config import find_config
    from moldiff.flowmap.train import load_teacher

    cfg = load_config(find_config(name), [], FlowMapRunConfig)
    _, teacher = load_teacher(cfg, torch.device("cpu"))  # raises where elements or diffusion differ
    assert teacher["model"] == "qm9-edm"  # the coordinate-only model: a flow map takes no graph model


def test_the_shipped_config_validates_and_distillation_needs_a_teacher():
    cfg = load_config("moldiff/configs/flowmap_qm9.yaml", [], FlowMapRunConfig)
    assert cfg.flowmap.teacher == "qm9-edm"  # distils the built-in model, so it must share its sections
    builtin = load_config("moldiff/configs/qm9_builtin.yaml")
    assert cfg.diffusion == builtin.diffusion and cfg.data.elements == builtin.data.elements
    scratch = load_config("moldiff/configs/flowmap_meanflow_qm9.yaml", [], FlowMapRunConfig)  # no teacher needed
    assert scratch.flowmap.objective == "meanflow" and scratch.flowmap.teacher is None
    with pytest.raises(MoldiffError, match="set flowmap.teacher"):
        load_config(None, ["flowmap.objective=teacher-ode"], FlowMapRunConfig)
    with pytest.raises(MoldiffError, match="alpha_floor belongs to parameterization eps"):
        load_config("moldiff/configs/flowmap_qm9.yaml", ["flowmap.parameterization=x0", "flowmap.alpha_floor=0.3"],
                    FlowMapRunConfig)  # fmt: skip


def test_a_bf16_distillation_runs_its_teacher_and_sample_score_in_bf16(tmp_path):
    from moldiff.flowmap.train import FlowMapTrainer

    train(load_config(None, TINY + [f"out_dir={tmp_path}/teacher", "train.max_steps=1"]), log=lambda m: None)
    cfg = _flowmap(tmp_path, "dmd", 1, "flowmap.objective=dmd", f"flowmap.teacher={tmp_path}/teacher/model.pt",
                   "train.precision=bf16")  # fmt: skip
    trainer = FlowMapTrainer(cfg, log=lambda m: None)
    nets = (trainer.net, trainer.teacher.net, trainer.fake.denoiser.net)
    assert [net.precision for net in nets] == ["bf16"] * 3
