"""Known atoms: a model that takes a scaffold as input (``model.known_atoms``).

Replacement inpainting (``moldiff.guidance.inpaint``) hides the scaffold from an ordinary network
until late in sampling: at high noise its atoms are noised like the rest. A network trained with
known atoms sees them clean at every noise level, flagged by one extra input feature, and learns
where new atoms may go around them.

The state stays in the zero-CoM subspace of the whole molecule. The known atoms keep their clean
*shape* (positions minus their centroid) and clean type features, while their centroid is whatever
the forward process made it, so the state is still CoM-free and nothing else changes:

    z_t[known] = centroid_known(α x₀ + σ ε) + (x₀ − centroid_known(x₀))[known],   types: x₀'s

The training target for a known atom is the ε that state implies, (z_t − α x₀)/σ: its mean over the
known atoms is still the centroid's noise (what the network must predict to place the scaffold), and
it keeps ε CoM-free. At sampling, ``ScaffoldDenoiser`` builds the same input from the scaffold.

Training fragments (:func:`random_fragments`) are connected sets of heavy atoms grown breadth-first
over covalent bonds, half the time with the hydrogens bonded to them: the two ways a scaffold is given
(heavy atoms only, or with every hydrogen but those at ``*`` attachment points).

With ``model.known_valence`` the network also reads each known atom's *open valence*: in training
the number of its bonded neighbours outside the fragment (:func:`open_valences`), at sampling the
hydrogens the scaffold's atom carries but the fixed atoms leave out (``Fragment.open_valence``). A
heavy-atom pyridine ring then tells the network that its nitrogen takes no new neighbour and each
carbon exactly one, which positions and types alone leave ambiguous.
"""

from __future__ import annotations

from collections import deque

import torch

from moldiff.data.elements import COVALENT_RADII
from moldiff.diffusion.state import MolGraph, MolState

BOND_TOLERANCE = 0.45  # Å over the sum of covalent radii (the usual distance-based bond perception)
KEEP_HYDROGENS_PROB = 0.5  # how often a training fragment brings its hydrogens along


def keep_known_shape(z: MolState, clean: MolState, known: torch.Tensor, graph: MolGraph) -> MolState:
    """``z`` with each molecule's known atoms set to ``clean``'s shape around ``z``'s own centroid
    of them, and to ``clean``'s other atom fields. The centroid is kept, so a CoM-free ``z`` stays so."""
    if not bool(known.any()):
        return z
    b, dtype = graph.num_graphs, z.dtype
    weight = known.to(dtype)[:, None]
    count = torch.zeros(b, 1, dtype=dtype, device=z.device).index_add_(0, graph.batch, weight).clamp(min=1)

    def centroid(x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(b, x.shape[1], dtype=dtype, device=z.device)
        return (total.index_add_(0, graph.batch, x * weight) / count)[graph.batch]

    out = {}
    for f in z.specs:
        if f.on != "atoms":
            continue
        value = centroid(z[f.name]) + clean[f.name] - centroid(clean[f.name]) if f.centred else clean[f.name]
        out[f.name] = torch.where(known[:, None], value.to(z[f.name].dtype), z[f.name])
    return z.with_values(**out)


def _network(denoiser):
    """The network under a denoiser and any guidance wrappers (unwrapped from DDP), or None."""
    while not hasattr(denoiser, "net") and hasattr(denoiser, "inner"):
        denoiser = denoiser.inner
    net = getattr(denoiser, "net", None)
    return getattr(net, "module", net)  # DistributedDataParallel


def takes_known_atoms(denoiser) -> bool:
    """Whether the network under a denoiser (and any guidance wrappers) takes known atoms."""
    return bool(getattr(_network(denoiser), "known_atoms", False))


def takes_open_valence(denoiser) -> bool:
    """Whether that network also reads the known atoms' open valences (``model.known_valence``)."""
    return bool(getattr(_network(denoiser), "known_valence", False))


def _bonds(positions: torch.Tensor, types: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """(n, n) covalent bonds of one molecule: closer than the sum of radii + BOND_TOLERANCE."""
    r = radii[types]
    bonded = torch.cdist(positions, positions) < (r[:, None] + r[None, :] + BOND_TOLERANCE)
    bonded.fill_diagonal_(False)
    return bonded


def covalent_radii(atomic_numbers) -> torch.Tensor:
    """Covalent radii in Å (RDKit's periodic table) of a vocabulary's atomic numbers, (F,)."""
    return torch.tensor([COVALENT_RADII[int(z)] for z in atomic_numbers], dtype=torch.float32)


def random_fragments(positions: torch.Tensor, types: torch.Tensor, graph: MolGraph, radii: torch.Tensor,
                     hydrogen: torch.Tensor, prob: float, generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """(N,) True for the atoms of each molecule's known fragment; a molecule gets one with ``prob``.

    Args:
        positions: (N, 3) clean coordinates in Å; types: (N,) vocabulary indices.
        radii: (F,) covalent radius per type; hydrogen: (F,) True for the hydrogen type.
        prob: the chance that a molecule gets a fragment (the others train the unconditional model).
        generator: the source of every random choice (so a resumed training run repeats them).

    A fragment has between one heavy atom and all but one of them, so something is left to generate.
    """
    known = torch.zeros(positions.shape[0], dtype=torch.bool)
    ptr = graph.ptr.tolist()
    draws = torch.rand(graph.num_graphs, 4, generator=generator)
    pos, typ = positions.detach().float().cpu(), types.cpu()
    for m in range(graph.num_graphs):
        if float(draws[m, 0]) >= prob:
            continue
        a, e = ptr[m], ptr[m + 1]
        is_h = hydrogen[typ[a:e]]
        heavy = (~is_h).nonzero().flatten().tolist()
        if len(heavy) < 2:
            continue
        bonded = _bonds(pos[a:e], typ[a:e], radii)
        size = 1 + int(float(draws[m, 1]) * (len(heavy) - 1))  # 1 .. n_heavy - 1
        start = heavy[min(int(float(draws[m, 2]) * len(heavy)), len(heavy) - 1)]
        chosen = _grow(bonded & ~is_h[None, :], start, size)
        if float(draws[m, 3]) < KEEP_HYDROGENS_PROB:
            chosen |= set((bonded[sorted(chosen)].any(0) & is_h).nonzero().flatten().tolist())
        known[[a + i for i in sorted(chosen)]] = True
    return known.to(positions.device)


def open_valences(positions: torch.Tensor, types: torch.Tensor, graph: MolGraph, radii: torch.Tensor,
                  known: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """(N,) for each known atom, its bonded neighbours outside the fragment (the new atoms a model
    must bond to it); 0 for the other atoms. Bonds as in :func:`random_fragments`."""
    out = torch.zeros(positions.shape[0], dtype=torch.long)
    pos, typ, kn = positions.detach().float().cpu(), types.cpu(), known.cpu()
    ptr = graph.ptr.tolist()
    for m in range(graph.num_graphs):
        a, e = ptr[m], ptr[m + 1]
        if not bool(kn[a:e].any()):
            continue
        bonded = _bonds(pos[a:e], typ[a:e], radii)
        outside = (bonded & ~kn[a:e][None, :]).sum(1)
        out[a:e] = torch.where(kn[a:e], outside, torch.zeros_like(outside))
    return out.to(positions.device)


def _grow(adjacency: torch.Tensor, start: int, size: int) -> set[int]:
    """Breadth-first from ``start`` over ``adjacency`` until ``size`` atoms (or the component) are in."""
    chosen, queue = {start}, deque([start])
    while queue and len(chosen) < size:
        for j in adjacency[queue.popleft()].nonzero().flatten().tolist():
            if j not in chosen and len(chosen) < size:
                chosen.add(j)
                queue.append(j)
    return chosen
