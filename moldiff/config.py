"""Typed, validated run configuration, loaded from YAML and overridable with ``key=value``.

A wrong key or a value of the wrong type is a one-line MoldiffError that names the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moldiff.errors import MoldiffError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DataConfig(_Strict):
    # "qm9", "moses" (drug-like, conformers prepared and cached on first use), a .npz written by
    # `moldiff data ingest` / `moldiff data prepare`, or an SDF / SMILES / CSV file read directly
    dataset: str = "qm9"
    subset: int | None = Field(None, ge=1)  # moses only: the first N of its shuffled training split
    hydrogens: bool = True
    elements: list[str] = ["H", "C", "N", "O", "F"]
    properties: list[str] = []  # per-molecule conditioning inputs (for guidance work)
    max_train: int | None = None  # use only the first N training molecules (tiny runs)
    # one half of the training split (EDM's conditional protocol: a property "judge" learns from the
    # first half, the conditional generator from the second); applied before max_train
    half: Literal["first", "second"] | None = None


class ModelConfig(_Strict):
    backbone: Literal["egnn"] = "egnn"
    hidden: int = 128
    layers: int = 6
    attention: bool = True
    norm_factor: float = 1.0
    # take a scaffold as input: one more input flag marks known atoms, which training shows clean
    # (moldiff.diffusion.known); the same network still generates without a scaffold
    known_atoms: bool = False
    # known_atoms only: also give each known atom its open valence (how many new atoms bond to it:
    # the neighbours outside the fragment in training, the scaffold's missing hydrogens at sampling)
    known_valence: bool = False


class DiffusionConfig(_Strict):
    schedule: Literal["polynomial", "cosine", "linear-beta", "ve", "linear"] = "polynomial"
    schedule_power: float = 2.0  # polynomial only
    schedule_s: float = 1e-5  # polynomial only
    prediction: Literal["eps", "x0", "score", "velocity"] = "eps"
    type_scale: float = 0.25  # one-hot atom types are scaled by this before noising (EDM: 0.25)
    type_loss_weight: float = 1.0
    # The training view (moldiff.diffusion.losses): variational = ε-MSE (L_simple), score = σ²-weighted
    # denoising score matching, flow = velocity regression (flow matching). Left unset, ``flow``
    # picks schedule "linear" and prediction "velocity", ``score`` picks prediction "score".
    view: Literal["variational", "score", "flow"] = "variational"
    schedule_options: dict[str, float] = {}  # other schedules' parameters, e.g. {sigma_max: 10.0} for ve

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


class TrainConfig(_Strict):
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 500
    weight_decay: float = 1e-12
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    max_steps: int = 1_000_000
    max_minutes: float | None = None  # stop (with a checkpoint) after this wall time
    log_every: int = 50
    checkpoint_every: int = 500
    eval_every: int = 2000  # validation loss and sample quality
    eval_samples: int = 100
    eval_steps: int = 500
    val_molecules: int = 512
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    # network arithmetic (moldiff.nets.precision): bf16 runs the matrix products in bfloat16 (about
    # 2x faster steps where native), keeping float32 weights, optimizer, sums and coordinates
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    # classifier-free guidance: each molecule's condition (data.properties) is dropped with this
    # probability, so the same network also learns the unconditional model
    cond_drop_prob: float = Field(0.1, ge=0.0, lt=1.0)
    # several properties: of a kept condition, each property is also dropped on its own with this
    # probability, so the model can be sampled with targets for any subset of them
    cond_property_drop_prob: float = Field(0.0, ge=0.0, lt=1.0)
    # model.known_atoms only: the share of molecules trained with a random known fragment
    fragment_prob: float = Field(0.5, ge=0.0, le=1.0)


class TrackingConfig(_Strict):
    enabled: bool = True
    uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else sqlite:///<out_dir>/../mlflow.db
    experiment: str = "moldiff"


class RunConfig(_Strict):
    name: str = "run"
    out_dir: str = "runs/run"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()


class FlowMapConfig(_Strict):
    """How ``moldiff train-flowmap`` trains a flow map G(z_s, s, t) (``moldiff.flowmap.losses``)."""

    # teacher-ode / lagrangian / dmd distil ``teacher`` (a built-in model name or a model file, whose
    # data.elements and diffusion section the run must share); meanflow trains from data alone
    objective: Literal["teacher-ode", "lagrangian", "meanflow", "dmd"] = "teacher-ode"
    teacher: str | None = None
    diagonal: float | None = Field(None, ge=0.0, le=1.0)  # share of t = s pairs (None: the objective's default)
    grid_share: float = Field(0.0, ge=0.0, le=1.0)  # share of pairs that are jumps of the 1/2/4/8-jump uniform grids
    # velocity: G = z + (t − s) F; eps: G is a DDIM jump with noise prediction F (warm-startable
    # from an eps diffusion model with --init); x0: a DDIM jump with data prediction α_s z + σ_s F
    # (well conditioned for long jumps); see moldiff.flowmap.model
    parameterization: Literal["velocity", "eps", "x0"] = "velocity"
    # eps: x̂ = (z − σ F)/max(α, alpha_floor), which bounds the error amplification of long jumps
    # from the noisy end by 1/alpha_floor and keeps the teacher's DDIM where α ≥ alpha_floor
    alpha_floor: float = Field(0.0, ge=0.0, lt=1.0)
    substeps: int = Field(4, ge=1)  # teacher-ode: teacher solver steps per target
    teacher_solver: Literal["heun", "dpmpp-2m"] = "heun"  # teacher-ode: Heun in t or DPM-Solver++(2M) in λ
    huber: float = Field(0.0, ge=0.0)  # teacher-ode: pseudo-Huber δ of the per-feature error (0: squared error)
    adaptive_p: float = Field(0.0, ge=0.0)  # meanflow: adaptive loss weight power (0: off)
    # dmd (moldiff.flowmap.dmd): noise levels τ of the distribution match, updates of the sample
    # score per generator update (DMD2 uses 5), its learning rate (None: train.lr), the weight
    # of an added teacher-ode regression (0: none), where each jump's start comes from
    # (simulated: the γ = 1 sampler's own earlier jumps; noised-data: α_s x + σ_s ε), and the
    # K-jump grids whose jumps train (DMD2 trains one 4-step grid)
    dmd_tau: tuple[float, float] = (0.02, 0.98)
    dmd_fake_steps: int = Field(1, ge=1)
    dmd_fake_lr: float | None = Field(None, gt=0.0)
    dmd_regression: float = Field(0.0, ge=0.0)
    dmd_starts: Literal["simulated", "noised-data"] = "simulated"
    dmd_grids: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    eval_jumps: int = Field(4, ge=1)  # flow-map jumps of the sample-quality evaluation
    eval_gamma: float = Field(0.0, ge=0.0, le=1.0)  # its re-noising between jumps (dmd samples with 1)

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
    """A flow-map run: a RunConfig plus its ``flowmap`` section."""

    name: str = "flowmap"
    out_dir: str = "runs/flowmap"
    flowmap: FlowMapConfig = FlowMapConfig(objective="meanflow")


class PredictorTrainConfig(_Strict):
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-12
    grad_clip: float = 10.0
    max_steps: int = 100_000
    max_minutes: float | None = None
    log_every: int = 100
    eval_every: int = 1000  # validation MAE, in each target's unit
    checkpoint_every: int = 1000
    val_molecules: int = 1000
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # as TrainConfig.precision


class PredictorConfig(_Strict):
    """A property predictor (``moldiff train-predictor``): noisy for guidance, clean for a judge."""

    name: str = "predictor"
    out_dir: str = "runs/predictor"
    data: DataConfig = DataConfig()
    # QM9 properties (alpha, gap, homo, lumo, mu, Cv) and/or RDKit scores (qed, logp, sa, mw)
    targets: list[str] = ["gap"]
    # true: trained on z_t of the diffusion (diffusion.schedule, times uniform in [0, 1]) for
    # guidance; false: on clean molecules only (the judge of EDM's conditional protocol)
    noisy: bool = True
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    train: PredictorTrainConfig = PredictorTrainConfig()


_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def parse_value(text: str):
    """A command-line value read as YAML (numbers, booleans, lists, words), and ``1e-3`` as the
    number it means: YAML 1.1 reads a float without a dot in the mantissa as a string."""
    if _SCIENTIFIC.fullmatch(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise MoldiffError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MoldiffError(f"override {key!r}: {part!r} is not a section")
        node[parts[-1]] = parse_value(value)
    return raw


def load_config(path: str | Path | None, overrides: list[str] = (), schema: type[BaseModel] | None = None):
    """Read a YAML config (or the defaults when ``path`` is None), apply overrides, validate
    against ``schema`` (default :class:`RunConfig`)."""
    raw: dict = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise MoldiffError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise MoldiffError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise MoldiffError(f"config {path} must be a mapping of sections")
    return validate_config(apply_overrides(raw, list(overrides)), schema)


def is_flowmap_config(path: str | Path | None, overrides: list[str] = ()) -> bool:
    """Whether a config file (or an override) has a ``flowmap`` section, i.e. describes a flow-map run."""
    if any(o.split("=", 1)[0].startswith("flowmap.") for o in overrides):
        return True
    if path is None:
        return False
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_config reports it
    return isinstance(raw, dict) and "flowmap" in raw


def validate_config(raw: dict, schema: type[BaseModel] | None = None):
    try:
        return (schema or RunConfig).model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise MoldiffError(f"unknown config key {key!r}") from None
        if err["type"] == "value_error" and not isinstance(err.get("input"), (str, int, float, bool)):
            raise MoldiffError(f"config section {key!r}: {err['msg'].removeprefix('Value error, ')}") from None
        raise MoldiffError(f"config key {key!r}: {err['msg']} (got {err.get('input')!r})") from None
