"""PropertyModel: a trained property predictor together with what it needs to read molecules (the
atom vocabulary, the one-hot scale, the schedule it was trained to see noisy molecules under, and
the normalisation of its targets), as MoleculeGenerator is for a diffusion model.

Two uses: a *noisy* predictor steers sampling (``moldiff.guidance.regressor``) and is asked about
z_t at any time t; a *clean* predictor (the "judge" of EDM's conditional protocol) scores finished
molecules. A noisy predictor can steer a generator with another schedule: a time t of the
generator is mapped to the predictor's time of the same log-SNR λ, and z_t is rescaled by
α_pred / α_gen (x̃ = z/α and σ̃ = e^{−λ} agree between schedules at equal λ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from moldiff.data.batch import MolBatch, collate
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.diffusion.state import MolGraph, MolState, coordinate_fields
from moldiff.errors import MoldiffError
from moldiff.guidance.condition import PropertyNorm
from moldiff.nets.predictor import PropertyPredictor

PREDICTOR = "moldiff-predictor"  # checkpoint kind


def encode_batch(batch: MolBatch, n_types: int, type_scale: float) -> tuple[MolState, MolGraph]:
    """Clean state z_0 of a batch: centred coordinates and scaled one-hot types."""
    graph = MolGraph(batch=batch.batch, ptr=batch.ptr)
    h = F.one_hot(batch.atom_type, n_types).float() * type_scale
    return MolState({"coords": batch.pos.float(), "types": h}, coordinate_fields(n_types, type_scale), graph).project(), graph


@dataclass
class PropertyModel:
    net: PropertyPredictor
    schedule: object
    vocab: AtomVocabulary
    type_scale: float
    norm: PropertyNorm
    noisy: bool = True
    # the fields of a state it reads: a graph model's charges and bonds are not among them, so
    # guidance by its gradient leaves them as the model predicts them
    reads: tuple[str, ...] = ("coords", "types")

    @property
    def names(self) -> tuple[str, ...]:
        return self.norm.names

    def __call__(self, z: MolState, t: torch.Tensor, graph: MolGraph, schedule=None) -> torch.Tensor:
        """Normalised predictions (B, P) for states ``z`` at times ``t`` (B,) of
        ``schedule`` (default: the predictor's own); of ``z`` it reads only the fields in ``reads``
        (a graph model's state has more). Categorical types (``moldiff.diffusion.discrete``) are
        read as the one-hots they are, without a masking prior's mask column."""
        if not self.noisy:
            t = torch.zeros_like(t)
        elif schedule is not None and schedule != self.schedule:
            lam = schedule.log_snr(t.double())
            own = self.schedule.t_from_log_snr(lam)
            ratio = (self.schedule(own).alpha / schedule(t.double()).alpha).to(z.dtype)
            z, t = z.with_values(**(z.of_kind("gaussian") * ratio).values), own.to(t.dtype)
        return self.net(z["coords"], z["types"][:, : len(self.vocab)], t, graph.batch, graph.ptr)

    @torch.no_grad()
    def predict(self, molecules: MolSet, batch_size: int = 256,
                device: str | torch.device = "cpu") -> dict[str, np.ndarray]:  # fmt: skip
        """Properties of clean molecules in physical units: name -> (M,). Molecules with an element
        outside the vocabulary get NaN."""
        out = np.full((len(molecules), len(self.names)), np.nan)
        known = np.array([all(self.vocab.contains(int(z)) for z in molecules.molecule(i)[0])
                          for i in range(len(molecules))], dtype=bool)  # fmt: skip
        index = np.flatnonzero(known & (molecules.n_atoms > 0))
        for start in range(0, len(index), batch_size):
            part = index[start : start + batch_size]
            z0, graph = encode_batch(collate(molecules, part, self.vocab).to(device), len(self.vocab), self.type_scale)
            t = torch.zeros(graph.num_graphs, device=z0.device)
            y = self.norm.denormalize(self.net(z0["coords"], z0["types"], t, graph.batch, graph.ptr))
            out[part] = y.double().cpu().numpy()
        return {name: out[:, k] for k, name in enumerate(self.names)}

    def to(self, device) -> PropertyModel:
        self.net.to(device)
        return self


def build_predictor_net(config, n_targets: int) -> PropertyPredictor:
    """The network a predictor config (``PredictorConfig``) describes."""
    m = config.model
    return PropertyPredictor(len(config.data.elements), n_targets, hidden=m.hidden, layers=m.layers,
                             attention=m.attention, norm_factor=m.norm_factor)  # fmt: skip


def load_property_model(name_or_path, device: str | torch.device = "cpu") -> PropertyModel:
    """A PropertyModel from a built-in predictor's name (``qm9-predictor``, ``qm9-judge``, ...) or a
    file written by ``moldiff train-predictor``."""
    from moldiff.config import PredictorConfig, validate_config
    from moldiff.generator import build_schedule
    from moldiff.models import resolve_predictor
    from moldiff.train.checkpoint import load_checkpoint

    path = resolve_predictor(str(name_or_path))
    payload = load_checkpoint(path, (PREDICTOR,))
    config = validate_config(payload["config"], PredictorConfig)
    norm = PropertyNorm.from_dict(payload["target_stats"])
    net = build_predictor_net(config, len(norm.names))
    try:
        net.load_state_dict(payload["weights"])
    except (RuntimeError, KeyError) as exc:
        raise MoldiffError(f"{path}: weights do not fit the predictor its config describes "
                           f"({str(exc)[:120]})") from None  # fmt: skip
    net.to(device).eval()
    return PropertyModel(net, build_schedule(config.diffusion), AtomVocabulary(tuple(config.data.elements)),
                         config.diffusion.type_scale, norm, config.noisy)  # fmt: skip
