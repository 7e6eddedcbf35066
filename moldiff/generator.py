"""MoleculeGenerator: a trained denoiser together with what turns its tensors into molecules
(the atom vocabulary, the one-hot scale, the atom-count histogram it samples sizes from).

A graph model (``data.graph``) also diffuses each atom's formal charge and the bond class of every
atom pair (none, single, double, triple: Kekulé orders) as Gaussian noise on scaled one-hots, as
JODO does, so every solver and view works on it unchanged; it decodes to molecules with its own
bonds and charges. With ``diffusion.discrete: categorical`` its types, charges and bond classes are
categorical fields instead (``moldiff.diffusion.discrete``), noised along class mixture paths and
moved by the one categorical step every solver goes through (``moldiff.solvers.categorical``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from moldiff.chem.hydrogens import add_hydrogens
from moldiff.config import DiffusionConfig, RunConfig
from moldiff.data.batch import MolBatch, bonds_from_classes
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.decoding import decode_bonds, decode_types
from moldiff.diffusion.denoiser import Denoiser
from moldiff.diffusion.discrete import field_priors
from moldiff.diffusion.schedules import make_schedule
from moldiff.diffusion.state import FieldSpec, MolGraph, MolState, coordinate_fields
from moldiff.errors import MoldiffError
from moldiff.guidance.condition import condition_features
from moldiff.nets import BACKBONES, GRAPH_BACKBONES

BOND_CLASSES = 4  # no bond, single, double, triple (Kekulé orders)


def build_network(config: RunConfig) -> torch.nn.Module:
    m = config.model
    if m.backbone in GRAPH_BACKBONES:  # atom features: types then charges; pair features: bond classes
        mask = int(config.diffusion.discrete == "categorical" and config.diffusion.discrete_prior == "masking")
        atoms = len(config.data.elements) + len(config.data.charges) + 2 * mask  # a masking prior's mask classes
        pair = BOND_CLASSES + mask
        return GRAPH_BACKBONES[m.backbone](
            in_features=atoms, pair_features=pair, out_features=atoms, pair_out=pair,
            hidden=m.hidden, layers=m.layers, pair_hidden=m.pair_hidden,
            cond_features=condition_features(config.data.properties), attention=m.attention,
            norm_factor=m.norm_factor, self_conditioning=m.self_conditioning,
        )  # fmt: skip
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


def graph_class_counts(data: MolSet, elements: list[str], charges: list[int]) -> dict[str, np.ndarray]:
    """Class counts of a graph training set {types, charges, bonds: (K,)}: elements, formal charges
    (in ``charges``' order) and the bond class of every atom pair (none, single, double, triple)."""
    types = AtomVocabulary(tuple(elements)).encode(data.atomic_numbers)
    table = {c: i for i, c in enumerate(charges)}
    charge_classes = np.array([table.get(int(c), -1) for c in np.unique(data.charges)])
    if (charge_classes < 0).any():
        raise MoldiffError(f"formal charges {sorted(set(np.unique(data.charges).tolist()) - set(charges))} are not "
                           f"among data.charges {list(charges)}")  # fmt: skip
    n = data.n_atoms.astype(np.int64)
    bonds = np.bincount(data.bonds[:, 2], minlength=BOND_CLASSES)[:BOND_CLASSES] if data.has_bonds else np.zeros(4, int)
    bonds[0] = int((n * (n - 1) // 2).sum()) - int(bonds[1:].sum())  # every other pair: no bond
    charge_counts = np.array([(data.charges == c).sum() for c in charges], dtype=np.float64)
    return {"types": np.bincount(types, minlength=len(elements)).astype(np.float64), "charges": charge_counts,
            "bonds": bonds.astype(np.float64)}  # fmt: skip


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
    bond_decoding: str = "valence"  # a graph model's bonds: or "argmax" (moldiff.decoding.decode_bonds)
    charges: tuple[int, ...] | None = None  # a graph model: the formal charges it writes (None: coordinates only)
    implicit_hydrogens: bool = False  # a heavy-atom graph model: RDKit adds each molecule's hydrogens
    discrete: str = "gaussian"  # a graph model's discrete fields: or "categorical" (moldiff.diffusion.discrete)
    discrete_prior: str = "uniform"  # categorical: the class paths' prior (uniform, marginal, masking)

    @classmethod
    def from_config(cls, config: RunConfig, net: torch.nn.Module, atom_count_hist: dict[int, int]):
        d = config.diffusion
        charges = tuple(config.data.charges) if config.data.graph else None
        implicit = config.data.graph and not config.data.hydrogens
        gen = cls(Denoiser(net, build_schedule(d), d.prediction), AtomVocabulary(tuple(config.data.elements)),
                  d.type_scale, atom_count_hist, charges=charges, implicit_hydrogens=implicit,
                  discrete=d.discrete, discrete_prior=d.discrete_prior)  # fmt: skip
        if gen.categorical:
            try:
                gen.denoiser.class_priors = field_priors(gen.fields, d.discrete_prior, d.discrete_marginals)
            except ValueError as exc:
                raise MoldiffError(f"diffusion.discrete_marginals: {exc}") from None
        return gen

    @property
    def graph_model(self) -> bool:
        """Whether the model also generates formal charges and bonds."""
        return self.charges is not None

    @property
    def categorical(self) -> bool:
        """Whether the discrete fields (types, charges, bonds) are categorical (a graph model only)."""
        return self.graph_model and self.discrete == "categorical"

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        """The diffused fields: coordinates and Gaussian one-hot types; a graph model adds Gaussian
        one-hot charges (atoms) and bond classes (pairs), at the types' scale, or makes types,
        charges and bonds categorical (a masking prior adds each one's mask class)."""
        if self.categorical:
            mask = self.discrete_prior == "masking"
            kind = {"kind": "categorical", "scale": self.type_scale, "masked": mask}
            return (FieldSpec("coords", columns=3, centred=True), FieldSpec("types", columns=len(self.vocab) + mask, **kind),
                    FieldSpec("charges", columns=len(self.charges) + mask, **kind),
                    FieldSpec("bonds", on="pairs", columns=BOND_CLASSES + mask, **kind))  # fmt: skip
        fields = coordinate_fields(len(self.vocab), self.type_scale)
        if self.graph_model:
            fields += (FieldSpec("charges", columns=len(self.charges), scale=self.type_scale),
                       FieldSpec("bonds", on="pairs", columns=BOND_CLASSES, scale=self.type_scale))  # fmt: skip
        return fields

    # ------------------------------------------------------------ tensors <-> molecules
    def encode(self, batch: MolBatch) -> tuple[MolState, MolGraph]:
        """Clean state z_0: centred coordinates and the scaled one-hot types (a graph model: also
        charges and the bond class of every pair, on the graph with its pairs)."""
        graph = MolGraph(batch=batch.batch, ptr=batch.ptr, cond=batch.props if batch.props.shape[1] else None)
        width = {f.name: f.columns for f in self.fields}  # a masking prior's mask class: one more column
        h = F.one_hot(batch.atom_type, width["types"]).float() * self.type_scale
        values = {"coords": batch.pos.float(), "types": h}
        if self.graph_model:
            if batch.bond_class is None:
                raise MoldiffError("a graph model trains on molecules with bonds (data.graph)")
            graph = graph.with_pairs()
            values["charges"] = self._one_hot(self._charge_classes(batch.charge), width["charges"])
            values["bonds"] = self._one_hot(batch.bond_class, width["bonds"])
        return MolState(values, self.fields, graph).project(), graph

    def _one_hot(self, classes: torch.Tensor, n: int) -> torch.Tensor:
        return F.one_hot(classes, n).float() * self.type_scale

    def _charge_classes(self, charge: torch.Tensor) -> torch.Tensor:
        """(N,) the index of each atom's formal charge in ``charges``."""
        table = torch.as_tensor(self.charges, device=charge.device)
        match = charge[:, None] == table
        if not bool(match.any(1).all()):
            other = sorted(set(charge[~match.any(1)].tolist()))
            raise MoldiffError(f"formal charges {other} are not among the model's charges {list(self.charges)} "
                               "(data.charges)")  # fmt: skip
        return match.long().argmax(1)

    def decode(self, z: MolState, graph: MolGraph, fixed: torch.Tensor | None = None) -> MolSet:
        """Coordinates and atom types (``type_decoding``; ``fixed`` (N,) atoms keep their argmax) of a
        final state, as a MolSet; a heavy-atom graph model's molecules get their hydrogens
        (:func:`moldiff.chem.hydrogens.add_hydrogens`)."""
        z_of_type = torch.as_tensor(self.vocab.atomic_numbers)
        if self.categorical:  # the final classes are data classes: a mask column (masking prior) is empty
            z = z.with_values(types=z["types"][:, : len(self.vocab)], charges=z["charges"][:, : len(self.charges)],
                              bonds=z["bonds"][:, :BOND_CLASSES])  # fmt: skip
        types = decode_types(z["types"], z_of_type, graph.batch, graph.num_graphs, self.type_decoding, fixed)
        atomic_numbers = self.vocab.decode(types.cpu().numpy())
        graph_part = {}
        if self.graph_model:  # the model's own graph: the likeliest charge and bond class (``bond_decoding``)
            charges = np.asarray(self.charges)[z["charges"].argmax(1).cpu().numpy()]
            classes = decode_bonds(z["bonds"], graph.pairs, atomic_numbers, charges, self.bond_decoding)
            bonds, bond_ptr = bonds_from_classes(classes, graph.num_atoms.cpu().numpy())
            graph_part = {"charges": charges, "bonds": bonds, "bond_ptr": bond_ptr}
        molecules = MolSet(
            atomic_numbers=atomic_numbers,
            positions=z["coords"].detach().cpu().numpy(),
            ptr=graph.ptr.cpu().numpy(),
            **graph_part,
        )
        return add_hydrogens(molecules) if self.implicit_hydrogens else molecules

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
