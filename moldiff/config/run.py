"""The training configs: ``moldiff train`` (:class:`RunConfig`), ``moldiff train-flowmap``
(:class:`FlowMapRunConfig`) and ``moldiff train-predictor`` (:class:`PredictorConfig`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from moldiff.config.base import Strict, Tracking

Precision = Literal["fp32", "bf16", "auto"]


class DataConfig(Strict):
    """The training set."""

    dataset: str = Field("qm9", description="qm9; moses (drug-like, conformers prepared and cached on first use); "
                         "a .npz written by `moldiff data ingest` or `moldiff data prepare`; or an SDF, SMILES or "
                         "CSV file, read directly.")  # fmt: skip
    subset: int | None = Field(None, ge=1, description="moses only: the first N molecules of its shuffled training split.")
    hydrogens: bool = Field(True, description="Keep explicit hydrogens.")
    elements: list[str] = Field(["H", "C", "N", "O", "F"], description="The elements the model writes.")
    properties: list[str] = Field([], description="Per-molecule properties the model is conditioned on "
                                  "(a conditional model, steered with --target).")  # fmt: skip
    max_train: int | None = Field(None, description="Use only the first N training molecules (tiny runs).")
    half: Literal["first", "second"] | None = Field(
        None, description="One half of the training split, applied before max_train (EDM's conditional protocol: "
        "a property judge learns from the first half, the conditional generator from the second).")  # fmt: skip
    graph: bool = Field(False, description="Also train on the bond graph: each atom's formal charge and the Kekulé "
                        "bond order (none, single, double, triple) of every atom pair are diffused with the "
                        "coordinates and types, and the model writes its own bonds (needs model.backbone "
                        "egnn_pairs; QM9 and MOSES bonds come from their SMILES, an SDF's as written).")  # fmt: skip
    charges: list[int] = Field([-1, 0, 1], min_length=1, description="graph only: the formal charges the model writes.")


class ModelConfig(Strict):
    """The denoising network."""

    backbone: Literal["egnn", "egnn_pairs"] = Field(
        "egnn", description="Network architecture: egnn (atoms), or egnn_pairs (atoms and atom pairs, for data.graph).")
    pair_hidden: int = Field(64, description="egnn_pairs only: width of the pair state.")
    self_conditioning: bool = Field(False, description="egnn_pairs only: the network also reads its previous clean "
                                    "estimate (the sampler's last prediction; in training, half the batches feed "
                                    "back a first pass without gradient).")  # fmt: skip
    hidden: int = Field(128, description="Width of the node features.")
    layers: int = Field(6, description="Message-passing layers.")
    attention: bool = Field(True, description="Gate each message by a learned attention weight.")
    norm_factor: float = Field(1.0, description="Divides the sum of messages at each node.")
    known_atoms: bool = Field(False, description="Take a scaffold as input: one more input flag marks known atoms, "
                              "which training shows clean; the same network still generates without a scaffold.")  # fmt: skip
    known_valence: bool = Field(False, description="With known_atoms: also give each known atom its open valence "
                                "(how many new atoms bond to it: its neighbours outside the fragment in training, "
                                "the scaffold's missing hydrogens when sampling).")  # fmt: skip


class DiffusionConfig(Strict):
    """The noising process and what the network predicts (``moldiff.diffusion``)."""

    schedule: Literal["polynomial", "cosine", "linear-beta", "ve", "linear"] = Field(
        "polynomial", description="Noise schedule.")  # fmt: skip
    schedule_power: float = Field(2.0, description="polynomial schedule only: its power.")
    schedule_s: float = Field(1e-5, description="polynomial schedule only: its precision offset s.")
    prediction: Literal["eps", "x0", "score", "velocity"] = Field("eps", description="What the network predicts.")
    type_scale: float = Field(0.25, description="One-hot atom types are scaled by this before noising (EDM: 0.25).")
    type_loss_weight: float = Field(1.0, description="Weight of the atom-type part of the loss.")
    charge_loss_weight: float = Field(1.0, ge=0.0, description="data.graph only: weight of the formal-charge part "
                                      "of the loss.")  # fmt: skip
    bond_loss_weight: float = Field(1.0, ge=0.0, description="data.graph only: weight of the bond part of the loss "
                                    "(a per-molecule mean over atom pairs, added to the atoms' mean).")  # fmt: skip
    view: Literal["variational", "score", "flow"] = Field(
        "variational", description="The training objective (moldiff.diffusion.losses): variational is the "
        "epsilon-MSE, score the sigma^2-weighted denoising score matching, flow the velocity regression of flow "
        "matching. Left unset, flow picks schedule linear and prediction velocity, score picks prediction score.")  # fmt: skip
    schedule_options: dict[str, float] = Field({}, description="Other schedules' parameters, e.g. {sigma_max: 10.0} for ve.")
    discrete: Literal["gaussian", "categorical"] = Field(
        "gaussian", description="data.graph only: the noise of the discrete fields (atom types, formal charges, "
        "bond classes): gaussian on scaled one-hots (every solver's own arithmetic), or categorical (each entry a "
        "class on a mixture path to discrete_prior, moldiff.diffusion.categorical; the network predicts the clean "
        "class's logits, trained by cross-entropy). Coordinates stay Gaussian.")  # fmt: skip
    discrete_prior: Literal["uniform", "marginal", "masking"] = Field(
        "uniform", description="discrete categorical only: where each class path ends: uniform, marginal (the "
        "training set's class frequencies, stored with the model as discrete_marginals) or masking (an extra mask "
        "class).")  # fmt: skip
    discrete_marginals: dict[str, list[float]] = Field(
        {}, description="discrete_prior marginal only: each field's class frequencies (types, charges, bonds); "
        "filled from the training set when training starts, and kept in the model file.")  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _view_defaults(cls, data):
        if isinstance(data, dict):
            defaults = VIEW_DEFAULTS.get(data.get("view", "variational"), {})
            data = {**defaults, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.prediction == "velocity" and self.schedule == "polynomial":
            # α' = σ' = 0 at t = 0 and t = 1: the velocity is 0 there whatever x_0 and ε are
            raise ValueError("prediction 'velocity' needs a schedule whose SNR moves at both ends; the "
                             "polynomial schedule is flat at t = 0 and 1 (use cosine, linear-beta, ve or linear)")
        if self.schedule_options and self.schedule == "polynomial":
            raise ValueError("the polynomial schedule takes schedule_power and schedule_s, not schedule_options")
        return self


VIEW_DEFAULTS = {"flow": {"schedule": "linear", "prediction": "velocity"}, "score": {"prediction": "score"}}


class TrainConfig(Strict):
    """The optimisation of ``moldiff train``."""

    batch_size: int = Field(64, description="Molecules per optimiser step.")
    lr: float = Field(5e-4, description="Learning rate after warm-up.")
    warmup_steps: int = Field(500, description="Steps of linear learning-rate warm-up.")
    weight_decay: float = Field(1e-12, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, description="Gradient-norm clipping threshold.")
    ema_decay: float = Field(0.999, description="Decay of the exponential moving average of the weights (the model sampled).")
    max_steps: int = Field(1_000_000, description="Stop after this many optimiser steps.")
    max_minutes: float | None = Field(None, description="Stop (with a checkpoint) after this wall time.")
    log_every: int = Field(50, description="Steps between training-loss log lines.")
    checkpoint_every: int = Field(500, description="Steps between checkpoints (last.pt, model.pt).")
    snapshot_every_cpu_minutes: float | None = Field(
        None, gt=0, description="Keep a copy of the model file each time training crosses a multiple of this many "
        "CPU minutes (OUT_DIR/snapshots/model_step<step>.pt), for learning curves.")  # fmt: skip
    eval_every: int = Field(2000, description="Steps between evaluations of validation loss and sample quality.")
    eval_samples: int = Field(100, description="Molecules sampled at each evaluation.")
    eval_steps: int = Field(500, description="Sampler steps of each evaluation.")
    val_molecules: int = Field(512, description="Validation molecules of the validation loss.")
    seed: int = Field(0, description="Seed of the initial weights and the data order.")
    threads: int | None = Field(None, description="CPU threads for torch (default: torch's choice).")
    device: str = Field("auto", description="cpu, cuda or auto.")
    precision: Precision = Field("fp32", description="Network arithmetic (moldiff.nets.precision): bf16 runs the "
                                 "matrix products in bfloat16 (about 2x faster steps where native) with float32 "
                                 "weights, optimiser, sums and coordinates; auto picks bf16 where native.")  # fmt: skip
    cond_drop_prob: float = Field(0.1, ge=0.0, lt=1.0, description="Classifier-free guidance: each molecule's "
                                  "condition (data.properties) is dropped with this probability, so the same "
                                  "network also learns the unconditional model.")  # fmt: skip
    cond_property_drop_prob: float = Field(0.0, ge=0.0, lt=1.0, description="Several properties: of a kept "
                                           "condition, each property is also dropped alone with this probability, "
                                           "so any subset of them can be targeted.")  # fmt: skip
    fragment_prob: float = Field(0.5, ge=0.0, le=1.0, description="model.known_atoms only: the share of molecules "
                                 "trained with a random known fragment.")  # fmt: skip
    continues: str | None = Field(None, description="The model this training continues (a built-in model name or a "
                                  "model file): with --resume and no OUT_DIR/last.pt, training goes on from that "
                                  "model's weights, step, epoch position and learning curve (the optimizer moments "
                                  "restart).")  # fmt: skip


class RunConfig(Strict):
    """A ``moldiff train`` run: a diffusion model trained on a data set."""

    name: str = Field("run", description="Run name (MLflow run name).")
    out_dir: str = Field("runs/run", description="Where checkpoints, metrics and the run record go.")
    data: DataConfig = Field(DataConfig(), description="The training set.")
    model: ModelConfig = Field(ModelConfig(), description="The denoising network.")
    diffusion: DiffusionConfig = Field(DiffusionConfig(), description="The noising process.")
    train: TrainConfig = Field(TrainConfig(), description="The optimisation.")
    tracking: Tracking = Field(Tracking(), description="MLflow tracking.")

    @model_validator(mode="after")
    def _graph_model(self):
        check_graph_model(self.data, self.model)
        d = self.diffusion
        if d.discrete == "categorical" and not self.data.graph:
            raise ValueError("diffusion.discrete categorical is for graph models (data.graph); a coordinate model's "
                             "types are Gaussian")  # fmt: skip
        if d.discrete != "categorical" and (d.discrete_prior != "uniform" or d.discrete_marginals):
            raise ValueError("diffusion.discrete_prior and discrete_marginals need diffusion.discrete categorical")
        if d.discrete_marginals and d.discrete_prior != "marginal":
            raise ValueError("diffusion.discrete_marginals needs diffusion.discrete_prior marginal")
        return self


def check_graph_model(data: DataConfig, model: ModelConfig) -> None:
    """A graph model (data.graph) needs the pair network and the pair network needs graph data."""
    if data.graph != (model.backbone == "egnn_pairs"):
        raise ValueError("data.graph and model.backbone egnn_pairs go together: the pair network reads and writes "
                         "the bond graph, which only graph data gives")  # fmt: skip
    if model.self_conditioning and model.backbone != "egnn_pairs":
        raise ValueError("model.self_conditioning needs model.backbone egnn_pairs")
    if data.graph and model.known_atoms:
        raise ValueError("model.known_atoms is not available for graph models (data.graph) yet")
    if data.graph and len(set(data.charges)) != len(data.charges):
        raise ValueError(f"data.charges must not repeat a charge, got {data.charges}")


class FlowMapConfig(Strict):
    """How ``moldiff train-flowmap`` trains a flow map G(z_s, s, t) (``moldiff.flowmap.losses``)."""

    objective: Literal["teacher-ode", "lagrangian", "meanflow", "dmd"] = Field(
        "teacher-ode", description="teacher-ode, lagrangian and dmd distil the teacher; meanflow trains from data alone.")
    teacher: str | None = Field(None, description="The model distilled: a built-in model name or a model file, "
                                "whose data.elements and diffusion section the run must share.")  # fmt: skip
    diagonal: float | None = Field(None, ge=0.0, le=1.0, description="Share of t = s pairs (default: the objective's own).")
    grid_share: float = Field(0.0, ge=0.0, le=1.0, description="Share of pairs that are jumps of the 1/2/4/8-jump uniform grids.")
    parameterization: Literal["velocity", "eps", "x0"] = Field(
        "velocity", description="velocity: G = z + (t - s) F; eps: G is a DDIM jump with noise prediction F "
        "(warm-startable from an eps diffusion model with --init); x0: a DDIM jump with data prediction "
        "alpha_s z + sigma_s F, well conditioned for long jumps (moldiff.flowmap.model).")  # fmt: skip
    alpha_floor: float = Field(0.0, ge=0.0, lt=1.0, description="eps only: x = (z - sigma F) / max(alpha, alpha_floor), "
                               "which bounds the error amplification of long jumps from the noisy end by 1/alpha_floor "
                               "and keeps the teacher's DDIM where alpha >= alpha_floor.")  # fmt: skip
    substeps: int = Field(4, ge=1, description="teacher-ode: teacher solver steps per target.")
    teacher_solver: Literal["heun", "dpmpp-2m"] = Field("heun", description="teacher-ode: Heun in t or DPM-Solver++(2M) in lambda.")
    huber: float = Field(0.0, ge=0.0, description="teacher-ode: pseudo-Huber delta of the per-feature error (0: squared error).")
    adaptive_p: float = Field(0.0, ge=0.0, description="meanflow: power of the adaptive loss weight (0: off).")
    dmd_tau: tuple[float, float] = Field((0.02, 0.98), description="dmd (moldiff.flowmap.dmd): the range of noise "
                                         "levels tau of the distribution match.")  # fmt: skip
    dmd_fake_steps: int = Field(1, ge=1, description="dmd: updates of the sample score per generator update (DMD2 uses 5).")
    dmd_fake_lr: float | None = Field(None, gt=0.0, description="dmd: learning rate of the sample score (default: train.lr).")
    dmd_regression: float = Field(0.0, ge=0.0, description="dmd: weight of an added teacher-ode regression (0: none).")
    dmd_starts: Literal["simulated", "noised-data"] = Field(
        "simulated", description="dmd: where each jump starts: simulated (the gamma = 1 sampler's own earlier "
        "jumps) or noised-data (alpha_s x + sigma_s eps).")  # fmt: skip
    dmd_grids: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1,
                                 description="dmd: the K-jump grids whose jumps train (DMD2 trains one 4-step grid).")  # fmt: skip
    eval_jumps: int = Field(4, ge=1, description="Flow-map jumps of the sample-quality evaluation.")
    eval_gamma: float = Field(0.0, ge=0.0, le=1.0, description="Re-noising between the evaluation's jumps (dmd samples with 1).")

    @model_validator(mode="after")
    def _teacher(self):
        if (self.diagonal or 0.0) + self.grid_share > 1.0:
            raise ValueError("flowmap.diagonal + flowmap.grid_share must be at most 1")
        if self.objective != "meanflow" and self.teacher is None:
            raise ValueError(f"objective {self.objective!r} distils a teacher: set flowmap.teacher")
        if not 0.0 < self.dmd_tau[0] < self.dmd_tau[1] <= 1.0:
            raise ValueError(f"flowmap.dmd_tau must be two times 0 < lo < hi <= 1, got {list(self.dmd_tau)}")
        if self.alpha_floor and self.parameterization != "eps":
            raise ValueError("flowmap.alpha_floor belongs to parameterization eps")
        if any(k < 1 for k in self.dmd_grids):
            raise ValueError(f"flowmap.dmd_grids must be jump counts >= 1, got {self.dmd_grids}")
        return self


class FlowMapRunConfig(RunConfig):
    """A ``moldiff train-flowmap`` run: a :class:`RunConfig` plus its ``flowmap`` section."""

    name: str = Field("flowmap", description="Run name (MLflow run name).")
    out_dir: str = Field("runs/flowmap", description="Where checkpoints, metrics and the run record go.")
    flowmap: FlowMapConfig = Field(FlowMapConfig(objective="meanflow"), description="How the flow map trains.")

    @model_validator(mode="after")
    def _no_graph(self):
        if self.data.graph:
            raise ValueError("flow maps do not take graph models (data.graph) yet")
        return self


class PredictorTrainConfig(Strict):
    """The optimisation of ``moldiff train-predictor``."""

    batch_size: int = Field(64, description="Molecules per optimiser step.")
    lr: float = Field(1e-3, description="Learning rate after warm-up.")
    weight_decay: float = Field(1e-12, description="AdamW weight decay.")
    grad_clip: float = Field(10.0, description="Gradient-norm clipping threshold.")
    max_steps: int = Field(100_000, description="Stop after this many optimiser steps.")
    max_minutes: float | None = Field(None, description="Stop (with a checkpoint) after this wall time.")
    log_every: int = Field(100, description="Steps between training-loss log lines.")
    eval_every: int = Field(1000, description="Steps between validation MAEs, in each target's unit.")
    checkpoint_every: int = Field(1000, description="Steps between checkpoints.")
    val_molecules: int = Field(1000, description="Validation molecules.")
    seed: int = Field(0, description="Seed of the initial weights and the data order.")
    threads: int | None = Field(None, description="CPU threads for torch (default: torch's choice).")
    device: str = Field("auto", description="cpu, cuda or auto.")
    precision: Precision = Field("fp32", description="Network arithmetic, as train.precision of moldiff train.")


class PredictorConfig(Strict):
    """A ``moldiff train-predictor`` run: a property predictor, noisy for guidance or clean for a judge."""

    name: str = Field("predictor", description="Run name.")
    out_dir: str = Field("runs/predictor", description="Where predictor.pt, its training state and metrics go.")
    data: DataConfig = Field(DataConfig(), description="The training set.")
    targets: list[str] = Field(["gap"], description="Properties predicted: QM9's (alpha, gap, homo, lumo, mu, Cv) "
                               "and/or RDKit scores (qed, logp, sa, mw).")  # fmt: skip
    noisy: bool = Field(True, description="true: trained on the noisy states z_t of the diffusion (diffusion "
                        "section, times uniform in [0, 1]) for guidance; false: on clean molecules only (the judge "
                        "of EDM's conditional protocol).")  # fmt: skip
    model: ModelConfig = Field(ModelConfig(), description="The predictor's network.")
    diffusion: DiffusionConfig = Field(DiffusionConfig(), description="The noising process of noisy predictors.")
    train: PredictorTrainConfig = Field(PredictorTrainConfig(), description="The optimisation.")

    @model_validator(mode="after")
    def _no_graph(self):
        if self.data.graph or self.model.backbone != "egnn":
            raise ValueError("property predictors take model.backbone egnn on atoms only (not data.graph)")
        return self
