"""The diffused state of a batch of molecules: named fields on atoms and on atom pairs
(:class:`MolState`, described by :class:`FieldSpec`), and the fixed graph they live on
(:class:`MolGraph`).

Today's models diffuse two atom fields: ``coords`` (N, 3), kept in the zero-CoM subspace, and
``types`` (N, F), a scaled one-hot as in EDM (:func:`coordinate_fields`). A field on pairs has one
row per unordered pair i < j of atoms of the same molecule (``MolGraph.with_pairs``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.utils._pytree as _pytree

from moldiff.data.com import remove_mean

ON = ("atoms", "pairs")
KINDS = ("gaussian", "categorical")


@dataclass(frozen=True)
class FieldSpec:
    """One diffused field: its ``name``, whether it lives ``on`` atoms or on pairs, its noise
    ``kind``, its ``columns`` (classes of a categorical field; the width of a Gaussian one),
    the ``scale`` of its one-hot (the network's input for categorical data, under either noise),
    whether each molecule's mean is removed (``centred``: coordinates) and whether a categorical
    field's last class is the mask of a masking prior (``masked``: the data never holds it)."""

    name: str
    on: str = "atoms"
    kind: str = "gaussian"
    columns: int = 1
    scale: float = 1.0
    centred: bool = False
    masked: bool = False

    def __post_init__(self) -> None:
        if self.on not in ON or self.kind not in KINDS or self.columns < 1:
            raise ValueError(f"FieldSpec {self.name!r}: on must be one of {ON}, kind one of {KINDS}, columns >= 1; "
                             f"got {self.on!r}, {self.kind!r}, {self.columns}")  # fmt: skip


def coordinate_fields(n_types: int, type_scale: float = 1.0) -> tuple[FieldSpec, ...]:
    """Today's models: zero-CoM coordinates and a Gaussian scaled one-hot of ``n_types`` elements."""
    return (FieldSpec("coords", columns=3, centred=True), FieldSpec("types", columns=n_types, scale=type_scale))


@dataclass(frozen=True)
class MolGraph:
    """What stays fixed while molecules are noised or denoised.

    Shapes: batch (N,), ptr (B + 1,), cond (B, C) or None, known (N,) bool or None: the atoms a
    scaffold fixes, for networks trained to take them (``moldiff.diffusion.known``), and
    open_valence (N,) or None: how many new atoms bond to each known atom (0 elsewhere).
    """

    batch: torch.Tensor
    ptr: torch.Tensor
    cond: torch.Tensor | None = None
    known: torch.Tensor | None = None
    open_valence: torch.Tensor | None = None
    pairs: torch.Tensor | None = None

    # ``pairs`` (P, 2): every unordered pair i < j of atoms of one molecule, molecule by molecule
    # (pair fields have one row per pair); set by :meth:`with_pairs`, None without pair fields.

    @property
    def num_graphs(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def num_atoms(self) -> torch.Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def num_pairs(self) -> torch.Tensor:
        """(B,) unordered atom pairs per molecule."""
        n = self.num_atoms
        return n * (n - 1) // 2

    @property
    def pair_batch(self) -> torch.Tensor:
        """(P,) the molecule of each pair."""
        return self.batch[self.pairs[:, 0]]

    def with_pairs(self) -> MolGraph:
        """This graph with its unordered pairs i < j (per molecule, unpadded)."""
        parts = []
        for start, n in zip(self.ptr[:-1].tolist(), self.num_atoms.tolist()):
            i, j = torch.triu_indices(n, n, 1, device=self.batch.device)
            parts.append(torch.stack([i, j], 1) + start)
        pairs = torch.cat(parts) if parts else self.batch.new_zeros(0, 2)
        return replace(self, pairs=pairs)

    def index(self, on: str) -> torch.Tensor:
        """The molecule of each row of a field ``on`` atoms (N,) or pairs (P,)."""
        return self.batch if on == "atoms" else self.pair_batch

    def leading(self, k: int) -> torch.Tensor:
        """(N,) True for the first ``k`` atoms of every molecule (where a scaffold sits)."""
        return torch.arange(self.batch.shape[0], device=self.batch.device) - self.ptr[self.batch] < k

    @staticmethod
    def from_counts(counts: torch.Tensor, cond: torch.Tensor | None = None) -> MolGraph:
        counts = counts.long()
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        batch = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
        return MolGraph(batch=batch, ptr=ptr, cond=cond)

    def repeat(self, copies: int) -> tuple[MolGraph, torch.Tensor]:
        """Every molecule ``copies`` times in a row (molecule 0's copies, then molecule 1's, ...),
        with its condition and every per-atom field (``known``, ``open_valence``, any added later).

        Returns the repeated graph and the (N·copies,) source atom of each of its atoms."""
        counts = self.num_atoms.repeat_interleave(copies)
        graph = MolGraph.from_counts(counts, None if self.cond is None else self.cond.repeat_interleave(copies, 0))
        offsets = torch.repeat_interleave(graph.ptr[:-1], counts)
        within = torch.arange(int(counts.sum()), device=counts.device) - offsets
        source = torch.repeat_interleave(self.ptr[:-1].repeat_interleave(copies), counts) + within
        graph = replace(graph, **self._per_atom(source))
        return (graph.with_pairs() if self.pairs is not None else graph), source

    def select(self, molecules: torch.Tensor) -> tuple[MolGraph, torch.Tensor]:
        """The molecules where ``molecules`` (B,) bool is True, in order, with their condition and
        per-atom fields. Returns that graph and the (N,) bool mask of their atoms in this one."""
        atoms = molecules[self.batch]
        graph = MolGraph.from_counts(self.num_atoms[molecules], None if self.cond is None else self.cond[molecules])
        graph = replace(graph, **self._per_atom(atoms))
        return (graph.with_pairs() if self.pairs is not None else graph), atoms

    def _per_atom(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every per-atom field that is set (``known``, ``open_valence``, any added later), indexed."""
        return {f.name: getattr(self, f.name)[index] for f in fields(self)
                if f.name not in _STRUCTURE and getattr(self, f.name) is not None}  # fmt: skip


_STRUCTURE = ("batch", "ptr", "cond", "pairs")  # MolGraph fields that are not one row per atom


def _rows(graph: MolGraph, on: str) -> torch.Tensor:
    """(B + 1,) where each molecule's rows of a field ``on`` atoms or pairs start."""
    if on == "atoms":
        return graph.ptr
    return torch.cat([graph.ptr.new_zeros(1), graph.num_pairs.cumsum(0)])


class MolState:
    """Named fields of a batch of molecules, each (rows, columns): atoms (N, ·), pairs (P, ·).

    The arithmetic solvers need works field by field: a state with a state, a number or a 0-d
    tensor (every row), or a (B,) tensor (one value per molecule, through each field's molecule
    index, as schedule coefficients at per-molecule times).

    Args:
        values: {name: tensor}, one per spec, in the specs' order.
        specs: the fields' :class:`FieldSpec`.
        graph: the molecules the rows belong to.
    """

    __slots__ = ("values", "specs", "graph")

    def __init__(self, values: dict[str, torch.Tensor], specs: tuple[FieldSpec, ...], graph: MolGraph) -> None:
        if [f.name for f in specs] != list(values):
            raise ValueError(f"state fields {list(values)} do not match the specs {[f.name for f in specs]}")
        self.values, self.specs, self.graph = values, tuple(specs), graph

    @classmethod
    def from_columns(cls, z: torch.Tensor, specs: tuple[FieldSpec, ...], graph: MolGraph) -> MolState:
        """Atom fields side by side as one tensor (N, Σ columns), in the specs' order, split."""
        if z.dim() != 2 or z.shape[1] != sum(f.columns for f in specs) or any(f.on != "atoms" for f in specs):
            raise ValueError(f"from_columns takes atom fields only, (N, {sum(f.columns for f in specs)}); "
                             f"got {tuple(z.shape)}")  # fmt: skip
        return cls(dict(zip((f.name for f in specs), z.split([f.columns for f in specs], dim=1))), specs, graph)

    def columns(self) -> torch.Tensor:
        """The atom fields side by side, (N, Σ columns) (a state without pair fields only)."""
        if any(f.on != "atoms" for f in self.specs):
            raise ValueError("columns() takes a state of atom fields only")
        return self.block("atoms")

    def block(self, on: str) -> torch.Tensor | None:
        """The fields ``on`` atoms or pairs side by side, (rows, Σ columns), or None without any."""
        parts = [v for f, v in zip(self.specs, self.values.values()) if f.on == on]
        return torch.cat(parts, dim=1) if parts else None

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.values[name]

    def of_kind(self, kind: str) -> MolState:
        """The fields of one noise ``kind`` (gaussian or categorical), as a state of their own."""
        specs = tuple(f for f in self.specs if f.kind == kind)
        return MolState({f.name: self.values[f.name] for f in specs}, specs, self.graph)

    def with_values(self, **values: torch.Tensor) -> MolState:
        """This state with some fields replaced."""
        return MolState({**self.values, **values}, self.specs, self.graph)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> MolState:
        """``fn`` applied to every field."""
        return MolState({k: fn(v) for k, v in self.values.items()}, self.specs, self.graph)

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.values.values())).dtype

    @property
    def device(self) -> torch.device:
        return next(iter(self.values.values())).device

    def to(self, *args, **kwargs) -> MolState:
        return self.map(lambda v: v.to(*args, **kwargs))

    def detach(self) -> MolState:
        return self.map(torch.Tensor.detach)

    def clone(self) -> MolState:
        return self.map(torch.Tensor.clone)

    def zeros_like(self) -> MolState:
        return self.map(torch.zeros_like)

    def requires_grad_(self) -> MolState:
        """A detached copy whose fields require gradients (for :func:`grad`)."""
        return self.map(lambda v: v.detach().requires_grad_(True))

    def sum(self) -> torch.Tensor:
        """The sum of every entry of every field (a scalar)."""
        return sum(v.sum() for v in self.values.values())

    def project(self) -> MolState:
        """Each molecule's mean removed from the centred fields (coordinates)."""
        g = self.graph
        return MolState({f.name: remove_mean(v, g.batch, g.num_graphs) if f.centred else v
                         for f, v in zip(self.specs, self.values.values())}, self.specs, g)  # fmt: skip

    def randn_like(self, generator: torch.Generator | None = None, dtype: torch.dtype | None = None) -> MolState:
        """Standard Gaussian noise shaped like this state, centred fields projected to zero CoM, drawn
        from one ``generator`` (training): the atom fields as one (N, Σ columns) block, then each
        pair field."""
        from moldiff import rng

        atoms = [f for f in self.specs if f.on == "atoms"]
        values = {}
        if atoms:
            n = self.graph.batch.shape[0]
            block = rng.randn((n, sum(f.columns for f in atoms)), generator=generator, device=self.device, dtype=dtype)
            values.update(zip((f.name for f in atoms), block.split([f.columns for f in atoms], dim=1)))
        for f in self.specs:
            if f.on == "pairs":
                shape = (self.values[f.name].shape[0], f.columns)
                values[f.name] = rng.randn(shape, generator=generator, device=self.device, dtype=dtype)
        return MolState({f.name: values[f.name] for f in self.specs}, self.specs, self.graph).project()

    # ------------------------------------------------------------------ per molecule
    def per_row(self, value, on: str) -> torch.Tensor:
        """``value`` broadcast to the rows of a field ``on`` atoms or pairs: a (B,) tensor through the
        molecule index, as a column; anything else as it is."""
        if isinstance(value, torch.Tensor) and value.dim() == 1:
            if value.shape[0] != self.graph.num_graphs:
                raise ValueError(f"a per-molecule value must be (B,) = ({self.graph.num_graphs},), got {tuple(value.shape)}")
            return value[self.graph.index(on), None]
        return value

    def _combine(self, other, op) -> MolState:
        if isinstance(other, MolState):
            return MolState({k: op(v, other.values[k]) for k, v in self.values.items()}, self.specs, self.graph)
        return MolState({f.name: op(v, self.per_row(other, f.on)) for f, v in zip(self.specs, self.values.values())},
                        self.specs, self.graph)  # fmt: skip

    def __add__(self, other):
        return self._combine(other, lambda a, b: a + b)

    def __radd__(self, other):
        return self._combine(other, lambda a, b: b + a)

    def __sub__(self, other):
        return self._combine(other, lambda a, b: a - b)

    def __rsub__(self, other):
        return self._combine(other, lambda a, b: b - a)

    def __mul__(self, other):
        return self._combine(other, lambda a, b: a * b)

    def __rmul__(self, other):
        return self._combine(other, lambda a, b: b * a)

    def __truediv__(self, other):
        return self._combine(other, lambda a, b: a / b)

    def __rtruediv__(self, other):
        return self._combine(other, lambda a, b: b / a)

    def __neg__(self):
        return self.map(torch.neg)

    def __pow__(self, exponent):
        return self.map(lambda v: v**exponent)

    def where(self, keep: torch.Tensor, other: MolState) -> MolState:
        """This state for the molecules where ``keep`` (B,) bool is True, ``other`` elsewhere."""
        return self._combine_rows(other, lambda a, b, f: torch.where(self.per_row(keep, f.on), a, b))

    def _combine_rows(self, other: MolState, op) -> MolState:
        return MolState({f.name: op(v, other.values[f.name], f) for f, v in zip(self.specs, self.values.values())},
                        self.specs, self.graph)  # fmt: skip

    def molecule_sum(self, values: Callable[[torch.Tensor, FieldSpec], torch.Tensor]) -> torch.Tensor:
        """(B,) Σ over each molecule's rows of ``values(field, spec)`` (one value per row), over all
        fields (per row first: atom fields add up atom by atom, then per molecule)."""
        g = self.graph
        total = 0
        for on in ON:
            rows = [values(v, f) for f, v in zip(self.specs, self.values.values()) if f.on == on]
            if rows:
                per_row = sum(rows[1:], rows[0])
                zeros = torch.zeros(g.num_graphs, dtype=per_row.dtype, device=per_row.device)
                total = total + zeros.index_add_(0, g.index(on), per_row)
        return total

    def entries(self) -> torch.Tensor:
        """(B,) numbers in each molecule's state: rows times columns, over all fields."""
        g = self.graph
        return sum((g.num_atoms if f.on == "atoms" else g.num_pairs) * f.columns for f in self.specs)

    def degrees_of_freedom(self) -> torch.Tensor:
        """(B,) dimensions of each molecule's state: centred fields lose one row of columns."""
        return degrees_of_freedom(self.specs, self.graph)

    # ----------------------------------------------------------------- molecules
    def molecules(self, chosen: torch.Tensor, graph: MolGraph) -> MolState:
        """The rows of molecules ``chosen`` (M,), in that order, as a state on ``graph`` (their graph)."""
        out = {}
        for f, v in zip(self.specs, self.values.values()):
            rows = _rows(self.graph, f.on).tolist()
            out[f.name] = torch.cat([v[rows[i] : rows[i + 1]] for i in chosen.tolist()])
        return MolState(out, self.specs, graph)

    def select(self, molecules: torch.Tensor, graph: MolGraph) -> MolState:
        """The rows of the molecules where ``molecules`` (B,) bool is True, as a state on ``graph``
        (theirs, from :meth:`MolGraph.select`)."""
        return MolState({f.name: v[molecules[self.graph.index(f.on)]] for f, v in zip(self.specs, self.values.values())},
                        self.specs, graph)  # fmt: skip

    def put(self, molecules: torch.Tensor, other: MolState) -> MolState:
        """This state with the rows of the molecules where ``molecules`` (B,) bool is True taken
        from ``other`` (a state of just those molecules, in order)."""
        out = {}
        for f, v in zip(self.specs, self.values.values()):
            v = v.clone()
            v[molecules[self.graph.index(f.on)]] = other[f.name].to(v.dtype)
            out[f.name] = v
        return MolState(out, self.specs, self.graph)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.values.items())
        return f"MolState({shapes})"


# a pytree node, so that torch.func (jvp, vmap) takes and returns states
_pytree.register_pytree_node(
    MolState,
    lambda z: (list(z.values.values()), (tuple(z.values), z.specs, z.graph)),
    lambda values, context: MolState(dict(zip(context[0], values)), context[1], context[2]),
)


def degrees_of_freedom(specs: tuple[FieldSpec, ...], graph: MolGraph) -> torch.Tensor:
    """(B,) dimensions of each molecule's state under ``specs`` (centred fields lose one row)."""
    dof = 0
    for f in specs:
        rows = graph.num_atoms if f.on == "atoms" else graph.num_pairs
        dof = dof + ((rows - 1) if f.centred else rows) * f.columns
    return dof


def grad(output: torch.Tensor, z: MolState, **kwargs) -> MolState:
    """∂ output / ∂ z, field by field (``z`` from :meth:`MolState.requires_grad_`); zero for a field
    the output does not depend on."""
    inputs = list(z.values.values())
    grads = torch.autograd.grad(output, inputs, allow_unused=True, **kwargs)
    grads = [torch.zeros_like(v) if g is None else g for g, v in zip(grads, inputs)]
    return MolState(dict(zip(z.values, grads)), z.specs, z.graph)


def project(z: MolState) -> MolState:
    """Remove each molecule's mean from the centred fields (coordinates) of ``z``; the rest unchanged."""
    return z.project()


# Today's two fields draw together, as one (n, 3 + F) block per molecule from its own generator, so
# their molecules stay what they were; every other field draws from its own generator, seeded by
# the molecule's seed and the field's name, so adding a field leaves the coordinate stream unchanged.
JOINT_FIELDS = ("coords", "types")


class MoleculeNoise:
    """Gaussian noise drawn molecule by molecule, each from its own seeded generator, so any one
    molecule of a run can be regenerated alone from its seed. Centred fields come out CoM-free."""

    def __init__(self, seeds: list[int], graph: MolGraph, specs: tuple[FieldSpec, ...],
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        if len(seeds) != graph.num_graphs:
            raise ValueError(f"need one seed per molecule: {len(seeds)} seeds, {graph.num_graphs} molecules")
        self.graph, self.specs = graph, tuple(specs)
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.own = {f.name: [torch.Generator().manual_seed(_field_seed(s, f.name)) for s in self.seeds]
                    for f in self.specs if f.name not in JOINT_FIELDS}  # fmt: skip
        self.device, self.dtype = device, dtype
        self._uniform_generators: dict[str, list[torch.Generator]] = {}

    def uniforms(self, name: str, rows: torch.Tensor, molecules: torch.Tensor | None = None) -> torch.Tensor:
        """Uniforms in [0, 1) for a categorical field ``name``: ``rows`` (B,) per molecule, drawn only
        for the ``molecules`` (B,) bool that move (all when None), each from the molecule's own
        generator for that field, so a molecule's draws never depend on the rest of its batch.
        Returns (Σ rows of the moving molecules,) float64, molecule by molecule."""
        if name not in self._uniform_generators:
            self._uniform_generators[name] = [torch.Generator().manual_seed(_field_seed(s, name + ":classes"))
                                              for s in self.seeds]  # fmt: skip
        gens = self._uniform_generators[name]
        moving = range(len(gens)) if molecules is None else molecules.nonzero().flatten().tolist()
        counts = rows.tolist()
        parts = [torch.rand(counts[i], generator=gens[i], dtype=torch.float64) for i in moving]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def randn(self) -> MolState:
        """Noise of every field, in ``dtype`` (drawn in float32, so a seed gives the same numbers
        whatever the dtype), centred fields projected to zero CoM."""
        joint = [f for f in self.specs if f.name in JOINT_FIELDS]
        values = {}
        if joint:
            width = sum(f.columns for f in joint)
            counts = self.graph.num_atoms.tolist()
            block = torch.cat([torch.randn(n, width, generator=g) for n, g in zip(counts, self.generators)])
            values.update(zip((f.name for f in joint), block.split([f.columns for f in joint], dim=1)))
        for f in self.specs:
            if f.name in self.own:
                counts = (self.graph.num_atoms if f.on == "atoms" else self.graph.num_pairs).tolist()
                values[f.name] = torch.cat([torch.randn(n, f.columns, generator=g) for n, g in zip(counts, self.own[f.name])])
        values = {f.name: values[f.name].to(device=self.device, dtype=self.dtype) for f in self.specs}
        return MolState(values, self.specs, self.graph).project()


def _field_seed(seed: int, name: str) -> int:
    """A 63-bit seed of one molecule's field, from the molecule's seed and the field's name."""
    state = np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(2, np.uint32)
    return int(state.view(np.uint64)[0] >> 1)
