"""The diffused state of a batch of molecules: one tensor ``z`` (N, 3 + F) whose first three
columns are coordinates (kept in the zero-CoM subspace) and whose other F columns are atom-type
features (a scaled one-hot, as in EDM), plus the fixed graph structure it lives on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from moldiff.data.com import remove_mean

N_COORDS = 3


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

    @property
    def num_graphs(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def num_atoms(self) -> torch.Tensor:
        return self.ptr[1:] - self.ptr[:-1]

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
        return replace(graph, **self._per_atom(source)), source

    def select(self, molecules: torch.Tensor) -> tuple[MolGraph, torch.Tensor]:
        """The molecules where ``molecules`` (B,) bool is True, in order, with their condition and
        per-atom fields. Returns that graph and the (N,) bool mask of their atoms in this one."""
        atoms = molecules[self.batch]
        graph = MolGraph.from_counts(self.num_atoms[molecules], None if self.cond is None else self.cond[molecules])
        return replace(graph, **self._per_atom(atoms)), atoms

    def _per_atom(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every per-atom field that is set (``known``, ``open_valence``, any added later), indexed."""
        return {f.name: getattr(self, f.name)[index] for f in fields(self)
                if f.name not in _STRUCTURE and getattr(self, f.name) is not None}  # fmt: skip


_STRUCTURE = ("batch", "ptr", "cond")  # MolGraph fields that are not one row per atom


def project(z: torch.Tensor, graph: MolGraph) -> torch.Tensor:
    """Remove each molecule's mean from the coordinate columns of ``z``; features unchanged."""
    x = remove_mean(z[:, :N_COORDS], graph.batch, graph.num_graphs)
    return torch.cat([x, z[:, N_COORDS:]], dim=1)


class MoleculeNoise:
    """Gaussian noise drawn molecule by molecule, each from its own seeded generator, so any one
    molecule of a run can be regenerated alone from its seed. Coordinates come out CoM-free."""

    def __init__(self, seeds: list[int], graph: MolGraph, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        if len(seeds) != graph.num_graphs:
            raise ValueError(f"need one seed per molecule: {len(seeds)} seeds, {graph.num_graphs} molecules")
        self.graph = graph
        self.counts = graph.num_atoms.tolist()
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.device, self.dtype = device, dtype

    def randn(self, dim: int) -> torch.Tensor:
        """Noise (N, dim) with zero-CoM coordinate columns, in ``dtype`` (drawn in float32, so a
        seed gives the same numbers whatever the dtype)."""
        parts = [torch.randn(n, dim, generator=g) for n, g in zip(self.counts, self.generators)]
        z = torch.cat(parts).to(device=self.device, dtype=self.dtype)
        return project(z, self.graph) if dim >= N_COORDS else z
