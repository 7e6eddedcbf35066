"""MoleculeGenerator: a trained denoiser together with what turns its tensors into molecules
(the atom vocabulary, the one-hot scale, the atom-count histogram it samples sizes from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from moldiff.config import DiffusionConfig, RunConfig
from moldiff.data.batch import MolBatch
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.decoding import decode_types
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState, coordinate_fields
from moldiff.errors import MoldiffError
from moldiff.guidance.condition import condition_features
from moldiff.nets import BACKBONES


def build_network(config: RunConfig) -> torch.nn.Module:
    m = config.model
    return BACKBONES[m.backbone](
        in_features=len(config.data.elements),
        hidden=m.hidden,
        layers=m.layers,
        cond_features=condition_features(config.data.properties),  # P properties + a "present" flag
        attention=m.attention,
        norm_factor=m.norm_factor,
        known_atoms=m.known_atoms,
        known_valence=m.known_valence,
    )


def build_schedule(d: DiffusionConfig):
    """The schedule a diffusion config names, with its parameters."""
    if d.schedule == "polynomial":
        return make_schedule("polynomial", power=d.schedule_power, s=d.schedule_s)
    try:
        return make_schedule(d.schedule, **d.schedule_options)
    except ValueError as exc:
        raise MoldiffError(f"diffusion.schedule_options: {exc}") from None


@dataclass
class MoleculeGenerator:
    denoiser: Denoiser
    vocab: AtomVocabulary
    type_scale: float
    atom_count_hist: dict[int, int]
    type_decoding: str = "argmax"  # or "closed-shell" (moldiff.decoding)

    @classmethod
    def from_config(cls, config: RunConfig, net: torch.nn.Module, atom_count_hist: dict[int, int]):
        d = config.diffusion
        return cls(Denoiser(net, build_schedule(d), d.prediction), AtomVocabulary(tuple(config.data.elements)),
                   d.type_scale, atom_count_hist)  # fmt: skip

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """The diffused fields: coordinates and Gaussian one-hot types."""
        return coordinate_fields(len(self.vocab), self.type_scale)

    # ------------------------------------------------------------ tensors <-> molecules
    def encode(self, batch: MolBatch) -> tuple[MolState, MolGraph]:
        """Clean state z_0: centred coordinates and the scaled one-hot types."""
        graph = MolGraph(batch=batch.batch, ptr=batch.ptr, cond=batch.props if batch.props.shape[1] else None)
        h = F.one_hot(batch.atom_type, len(self.vocab)).float() * self.type_scale
        return MolState({"coords": batch.pos.float(), "types": h}, self.fields, graph).project(), graph

    def decode(self, z: MolState, graph: MolGraph, fixed: torch.Tensor | None = None) -> MolSet:
        """Coordinates and atom types (``type_decoding``; ``fixed`` (N,) atoms keep their argmax) of a
        final state, as a MolSet."""
        z_of_type = torch.as_tensor(self.vocab.atomic_numbers)
        types = decode_types(z["types"], z_of_type, graph.batch, graph.num_graphs, self.type_decoding, fixed)
        return MolSet(
            atomic_numbers=self.vocab.decode(types.cpu().numpy()),
            positions=z["coords"].detach().cpu().numpy(),
            ptr=graph.ptr.cpu().numpy(),
        )

    # --------------------------------------------------------------------- sampling
    def sample_atom_counts(self, n: int, generator: np.random.Generator) -> np.ndarray:
        sizes = np.array(sorted(self.atom_count_hist), dtype=np.int64)
        p = np.array([self.atom_count_hist[k] for k in sizes], dtype=np.float64)
        return generator.choice(sizes, size=n, p=p / p.sum())

    def sample(self, seeds: list[int], n_atoms: list[int], *, solver, times: torch.Tensor,
               cond: torch.Tensor | None = None, device: str | torch.device = "cpu",
               fixed_atoms: int = 0) -> MolSet:  # fmt: skip
        """One batch of molecules, one per seed with the given atom counts (:func:`moldiff.generate.generate`);
        the first ``fixed_atoms`` atoms of every molecule (a scaffold) keep their types when decoding."""
        from moldiff.generate import generate

        return generate(self, seeds, n_atoms, solver=solver, times=times, conditions=cond, batch_size=max(len(seeds), 1),
                        device=device, fixed_atoms=fixed_atoms)  # fmt: skip
