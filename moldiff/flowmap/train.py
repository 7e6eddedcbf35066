"""``train_flowmap(config)``: the training loop of ``moldiff.train.loop`` (data, EMA, resumable
checkpoints, metrics, MLflow, ``train.continues``) with a flow-map network and a flow-map objective
(``moldiff.flowmap.losses``) in place of the diffusion network and loss.

Distillation (``teacher-ode``, ``lagrangian``, ``dmd``) loads the teacher named by
``flowmap.teacher`` and requires the run to share its atom vocabulary and diffusion section (the
flow map integrates the teacher's PF-ODE on the teacher's schedule). ``dmd`` also trains the score
of the flow map's own samples (``moldiff.flowmap.dmd.SampleScore``), whose weights and optimizer
are part of the training state, so a resumed run continues both. The sample-quality evaluation
draws molecules with ``flowmap.eval_jumps`` jumps and re-noising ``flowmap.eval_gamma``.
"""

from __future__ import annotations

import numpy as np
import torch

from moldiff.config import FlowMapRunConfig
from moldiff.errors import MoldiffError
from moldiff.flowmap.dmd import SampleScore, distribution_matching_loss
from moldiff.flowmap.generator import build_flowmap_network
from moldiff.flowmap.losses import flowmap_loss, teacher_ode_loss
from moldiff.nets.precision import set_precision
from moldiff.flowmap.model import FlowMapModel
from moldiff.flowmap.sampler import FlowMapSampler
from moldiff.generator import build_schedule
from moldiff.guidance.condition import null_condition
from moldiff.train import distributed as dist_utils
from moldiff.train.loop import Trainer


def load_teacher(config: FlowMapRunConfig, device):
    """The frozen teacher Denoiser of a distillation run, after checking it fits the run, and which
    weights it is (name, training step, file digest)."""
    from moldiff.models import load_generator, resolve_model
    from moldiff.paths import file_digest

    path = resolve_model(config.flowmap.teacher)
    gen, teacher_config, payload = load_generator(str(path), device=str(device))
    if teacher_config.data.elements != config.data.elements:
        raise MoldiffError(f"flowmap.teacher has elements {teacher_config.data.elements}, the run {config.data.elements}")
    if teacher_config.diffusion != config.diffusion:
        raise MoldiffError("flowmap.teacher was trained with another diffusion section; copy it into the run config: "
                           f"{teacher_config.diffusion.model_dump()}")  # fmt: skip
    if teacher_config.data.properties != config.data.properties:
        raise MoldiffError("flowmap.teacher is conditioned on other properties than the run")
    for p in gen.denoiser.net.parameters():
        p.requires_grad_(False)
    return gen.denoiser, {"model": config.flowmap.teacher, "step": payload.get("step"), "sha256": file_digest(path)}


class FlowMapTrainer(Trainer):
    """The diffusion Trainer with a flow-map network and objective."""

    def __init__(self, config: FlowMapRunConfig, **kwargs) -> None:
        fm = config.flowmap
        self.teacher = self.fake = self._fake_batch = None
        self.teachers: list[dict] = []  # the teacher weights of each stretch of steps (a resume may bring new ones)
        teacher_info = None
        if fm.objective != "meanflow":
            self.teacher, teacher_info = load_teacher(config, dist_utils.device_for_rank(_device(config.train.device)))
        if fm.objective == "dmd":
            self.fake = SampleScore(self.teacher, config.diffusion, fm.dmd_fake_lr or config.train.lr,
                                    config.train.grad_clip)  # fmt: skip
        super().__init__(config, **kwargs)
        last = {k: v for k, v in self.teachers[-1].items() if k != "from_step"} if self.teachers else None
        if teacher_info is not None and teacher_info != last:
            self.teachers.append({"from_step": self.step, **teacher_info})
        # the teacher's calls are most of a distillation step: they run in the student's precision
        for denoiser in (self.teacher, self.fake and self.fake.denoiser):
            if denoiser is not None:
                set_precision(denoiser.net, self.precision)

    def build_network(self, config: FlowMapRunConfig) -> torch.nn.Module:
        return build_flowmap_network(config)

    def flow_map(self, net: torch.nn.Module) -> FlowMapModel:
        fm = self.config.flowmap
        return FlowMapModel(net, fm.parameterization, build_schedule(self.config.diffusion), fm.alpha_floor)

    def _payload(self) -> dict:
        payload = super()._payload()
        payload |= {"teachers": self.teachers} if self.teachers else {}
        return payload if self.fake is None else payload | {"sample_score": self.fake.state_dict()}

    def _model_file(self) -> dict:
        payload = super()._model_file()
        return payload | {"teachers": self.teachers} if self.teachers else payload

    def _set_position(self, p: dict) -> None:
        super()._set_position(p)
        self.teachers = list(p.get("teachers", []))  # absent in files written before it was kept

    def _continue(self, source: str) -> None:
        super()._continue(source)
        if self.fake is not None:  # a model file keeps the flow map only
            self.log("the score of the flow map's samples (dmd) restarts from the teacher")

    def _restore(self, p: dict) -> None:
        super()._restore(p)
        if self.fake is not None:
            if "sample_score" not in p:
                raise MoldiffError(f"{self.state_path} is not a dmd training state (no sample score to resume)")
            self.fake.load_state_dict(p["sample_score"])

    def compute_loss(self, gen, z0, graph, generator) -> dict:
        fm = self.config.flowmap
        if fm.objective == "dmd":
            return self._dmd_loss(gen, z0, graph, generator)
        options = {"grid_share": fm.grid_share}
        if fm.diagonal is not None:
            options["diagonal"] = fm.diagonal
        if fm.objective == "teacher-ode":
            options.update(substeps=fm.substeps, teacher_solver=fm.teacher_solver, huber=fm.huber)
        if fm.objective == "meanflow":
            options["adaptive_p"] = fm.adaptive_p
        return flowmap_loss(fm.objective, self.flow_map(gen.denoiser.net), z0, graph, gen.denoiser.schedule,
                            teacher=self.teacher, type_weight=self.config.diffusion.type_loss_weight,
                            generator=generator, **options)  # fmt: skip

    def _dmd_loss(self, gen, z0, graph, generator) -> dict:
        """The generator's distribution-matching loss (+ the teacher-ode regression if weighted);
        keeps the samples for ``after_update`` to fit the sample score on."""
        fm, model = self.config.flowmap, self.flow_map(gen.denoiser.net)
        type_weight = self.config.diffusion.type_loss_weight
        losses, samples = distribution_matching_loss(model, z0, graph, gen.denoiser.schedule, teacher=self.teacher,
                                                     fake=self.fake, tau_range=tuple(fm.dmd_tau),
                                                     type_weight=type_weight, starts=fm.dmd_starts,
                                                     grids=tuple(fm.dmd_grids),
                                                     generator=generator)  # fmt: skip
        self._fake_batch = (samples, graph)
        if fm.dmd_regression > 0:
            regression = teacher_ode_loss(model, z0, graph, gen.denoiser.schedule, teacher=self.teacher,
                                          substeps=fm.substeps, teacher_solver=fm.teacher_solver, huber=fm.huber,
                                          type_weight=type_weight, grid_share=fm.grid_share, generator=generator,
                                          **({} if fm.diagonal is None else {"diagonal": fm.diagonal}))  # fmt: skip
            losses["loss"] = losses["loss"] + fm.dmd_regression * regression["loss"]
            losses["loss_regression"] = regression["loss"].detach()
        return losses

    def after_update(self, generator) -> dict:
        """dmd: ``dmd_fake_steps`` updates of the sample score on the samples of this step's loss."""
        if self.fake is None or self._fake_batch is None:
            return {}
        (samples, graph), self._fake_batch = self._fake_batch, None
        return {"loss_fake": torch.tensor(self.fake.fit(samples, graph, self.config.flowmap.dmd_fake_steps, generator))}

    def sample_quality(self) -> dict:
        from moldiff.chem.evaluate import evaluate
        from moldiff.solvers import get_solver, uniform_times

        tc = self.config.train
        counts = self.ema_gen.sample_atom_counts(tc.eval_samples, np.random.default_rng(0)).tolist()
        cond = None
        if self.cond_norm is not None:
            cond = null_condition(tc.eval_samples, len(self.cond_norm.names)).to(self.device)
        sampler = FlowMapSampler(self.flow_map(self.ema.model), self.ema_gen.denoiser.schedule)
        gen = type(self.ema_gen)(sampler, self.ema_gen.vocab, self.ema_gen.type_scale, self.ema_gen.atom_count_hist)
        solver = get_solver("flow-map", gamma=self.config.flowmap.eval_gamma)
        mols = gen.sample(list(range(tc.eval_samples)), counts, solver=solver,
                          times=uniform_times(self.config.flowmap.eval_jumps), cond=cond, device=self.device)  # fmt: skip
        summary, _ = evaluate(mols, reference_smiles=None)
        return {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and k != "n"}


def _device(name: str) -> torch.device:
    from moldiff.train.loop import pick_device

    return pick_device(name)


def train_flowmap(config: FlowMapRunConfig, *, resume: bool = False, tracker=None, init: str | None = None,
                  log=print) -> dict:  # fmt: skip
    """Train (or resume) a flow map; checkpoints go to ``config.out_dir`` (last.pt, model.pt).
    ``init`` warm-starts the network from a model file (e.g. the teacher: its new time columns
    start at zero, so with the ``eps`` parameterisation the flow map starts as the teacher's DDIM)."""
    dist_utils.setup()
    try:
        return FlowMapTrainer(config, resume=resume, tracker=tracker, init=init, log=log).run()
    finally:
        dist_utils.teardown()
