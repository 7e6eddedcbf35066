"""Scaffold-constrained generation (inpainting): k given atoms are kept fixed, the rest is generated.

Coordinates live in the zero-CoM subspace of the *whole* molecule, so "fixed" can only mean fixed
up to one translation: where the scaffold sits relative to the new atoms is exactly what the model
must decide. Write the k known atoms' block as its centroid c plus its internal shape
(x_i − c). Under the forward process z_t = α x₀ + σ ε with CoM-free ε, the internal-shape part of
the noise, ε_i − mean_known(ε), is independent of everything else (the known centroid's noise and
the other atoms' noise are functions of mean_known(g) and g_unknown of the underlying i.i.d. g).
So the shape of the known block can be conditioned on exactly while its centroid stays free:

* **x̂₀ replacement** (:class:`ScaffoldDenoiser`, works with every solver): the model's x̂₀ keeps
  its own centroid of the known block but takes the scaffold's shape and atom types; ε̂ follows as
  (z − α x̂₀)/σ. The centroid is unchanged, so x̂₀ stays zero-CoM with no re-projection, and for the
  known shape an ancestral step becomes the exact bridge q(z_s | z_t, x₀).
* **forward-noised known part** (:func:`replace_known`, RePaint's replacement, Lugmayr et al.
  2022): between solver segments the known block is redrawn as its current centroid plus
  α_s·shape + σ_s·(ξ − mean ξ), types α_s h + σ_s ξ_h. It also keeps the centroid, so the combined
  molecule stays zero-CoM; it is re-projected all the same, against rounding.
* **resampling** (RePaint): each segment of ``jump`` solver intervals is run ``resamples`` times,
  going back between runs from its end t_b to its start t_a through q(z_a | z_b)
  = N(α_a/α_b z_b, σ_a² − (α_a/α_b)² σ_b²), so the new atoms and the scaffold harmonise.

At the end the known block is set exactly to centroid + shape with exact types, and
:func:`align_to_scaffold` translates each molecule so the scaffold atoms sit exactly at the given
coordinates. The known atoms are the first k of every molecule, in the scaffold's order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.diffusion.known import takes_known_atoms, takes_open_valence
from moldiff.diffusion.state import MolGraph, MoleculeNoise, MolState, grad
from moldiff.errors import MoldiffError
from moldiff.guidance.base import GuidedDenoiser


@dataclass(frozen=True)
class Scaffold:
    """k atoms to keep: ``positions`` (k, 3) in Å (any frame), ``types`` (k,) vocabulary indices,
    and optionally ``open_valence`` (k,): how many new atoms bond to each (for networks that read it;
    a graph model's bond cap, :func:`cap_new_bonds`, reads it as bond orders).

    For a model that generates the bond graph: ``charges`` (k,) the index of each atom's formal
    charge in the model's charges, and ``bonds`` (k(k−1)/2,) the bond class (0: none, 1–3: Kekulé
    order) of every scaffold pair i < j, row-major (the order of ``MolGraph.with_pairs``)."""

    positions: torch.Tensor
    types: torch.Tensor
    open_valence: torch.Tensor | None = None
    charges: torch.Tensor | None = None
    bonds: torch.Tensor | None = None

    def __post_init__(self) -> None:
        k = self.types.shape[0]
        if k < 1 or self.positions.shape != (k, 3) or self.types.dim() != 1:
            raise ValueError(f"Scaffold needs positions (k, 3) and types (k,), k >= 1; got "
                             f"{tuple(self.positions.shape)} and {tuple(self.types.shape)}")  # fmt: skip
        if (self.charges is None) != (self.bonds is None):
            raise ValueError("a scaffold's charges and bonds come together")
        if self.charges is not None and (self.charges.shape != (k,) or self.bonds.shape != (k * (k - 1) // 2,)):
            raise ValueError(f"Scaffold needs charges ({k},) and bonds ({k * (k - 1) // 2},); got "
                             f"{tuple(self.charges.shape)} and {tuple(self.bonds.shape)}")  # fmt: skip
        if not torch.isfinite(self.positions).all():
            raise MoldiffError("the scaffold has non-finite coordinates")

    @classmethod
    def from_atoms(cls, atomic_numbers, positions, vocab: AtomVocabulary, open_valence=None) -> Scaffold:
        """From atomic numbers (k,) and positions (k, 3); elements outside ``vocab`` raise MoldiffError."""
        types = vocab.encode(np.asarray(atomic_numbers))
        valence = None if open_valence is None else torch.as_tensor(np.asarray(open_valence)).long()
        return cls(torch.as_tensor(np.asarray(positions), dtype=torch.float64), torch.as_tensor(types), valence)

    def with_graph(self, formal_charges, bond_orders, charge_table: tuple[int, ...]) -> Scaffold:
        """This scaffold with its graph, for a graph model writing formal charges ``charge_table``:
        ``formal_charges`` (k,) and Kekulé ``bond_orders`` (k, k), symmetric, 0 where unbonded.

        Raises:
            MoldiffError: a charge the model does not write, or a bond order outside 0–3.
        """
        k = self.size
        orders = torch.as_tensor(np.asarray(bond_orders)).long()
        charges = [int(q) for q in np.asarray(formal_charges).tolist()]
        other = sorted(set(charges) - set(charge_table))
        if other:
            raise MoldiffError(f"the scaffold has formal charges {other}; the model writes {list(charge_table)}")
        if orders.shape != (k, k) or not torch.equal(orders, orders.T) or orders.min() < 0 or orders.max() > 3:
            raise MoldiffError(f"the scaffold's bond orders must be a symmetric ({k}, {k}) table of 0-3")
        i, j = torch.triu_indices(k, k, 1)
        index = torch.tensor([charge_table.index(q) for q in charges], dtype=torch.long)
        return replace(self, charges=index, bonds=orders[i, j])

    @property
    def size(self) -> int:
        return int(self.types.shape[0])

    @property
    def has_graph(self) -> bool:
        """Whether the scaffold fixes charges and bonds (for a graph model)."""
        return self.bonds is not None

    def shape(self, like: torch.Tensor) -> torch.Tensor:
        """The internal shape: positions minus their centroid, (k, 3), as ``like``."""
        pos = self.positions.to(dtype=torch.float64)
        return (pos - pos.mean(0)).to(dtype=like.dtype, device=like.device)

    def features(self, n_types: int, type_scale: float, like: torch.Tensor) -> torch.Tensor:
        """Scaled one-hot types (k, F), as ``like``."""
        h = torch.nn.functional.one_hot(self.types.to(like.device), n_types).to(like.dtype)
        return h * type_scale

    def open_valences(self, graph: MolGraph) -> torch.Tensor | None:
        """(N,) the scaffold atoms' open valences in every molecule, 0 elsewhere (None if unknown)."""
        if self.open_valence is None:
            return None
        out = torch.zeros(graph.batch.shape[0], dtype=torch.long, device=graph.batch.device)
        out[self.mask(graph)] = self.open_valence.to(out.device).repeat(graph.num_graphs)
        return out

    def mask(self, graph: MolGraph) -> torch.Tensor:
        """(N,) True for the first k atoms of every molecule."""
        if int(graph.num_atoms.min()) < self.size:
            raise MoldiffError(f"every molecule needs at least the scaffold's {self.size} atoms")
        return graph.leading(self.size)

    def pair_mask(self, graph: MolGraph) -> torch.Tensor:
        """(P,) True for the pairs of two scaffold atoms of every molecule (in each molecule they
        come in the scaffold's own row-major order)."""
        self.mask(graph)  # every molecule holds the scaffold
        local = graph.pairs - graph.ptr[graph.pair_batch][:, None]
        return local[:, 1] < self.size  # i < j

    def masks(self, graph: MolGraph) -> dict[str, torch.Tensor]:
        """The known rows of fields on ``atoms`` (N,) and, on a graph with pairs, on ``pairs`` (P,)."""
        out = {"atoms": self.mask(graph)}
        if graph.pairs is not None:
            out["pairs"] = self.pair_mask(graph)
        return out

    def known_values(self, name: str, spec, like: torch.Tensor) -> torch.Tensor:
        """The clean one-hot rows (k or k(k−1)/2, columns) of a graph field, ``charges`` or ``bonds``."""
        if not self.has_graph:
            raise MoldiffError("a model that generates bonds needs the scaffold's charges and bonds")
        classes = {"charges": self.charges, "bonds": self.bonds}.get(name)
        if classes is None:
            raise MoldiffError(f"scaffolds do not fix a field {name!r}")
        return torch.nn.functional.one_hot(classes.to(like.device), spec.columns).to(like.dtype) * spec.scale

    def known_classes(self, graph: MolGraph) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{field: ((rows,) bool, (held,) classes)}: the scaffold's types, charges and bonds in every
        molecule (a model with categorical fields holds them, ``CategoricalSteps.hold``)."""
        atoms, b = self.mask(graph), graph.num_graphs
        out = {"types": (atoms, self.types.repeat(b))}
        if self.has_graph:
            out["charges"] = (atoms, self.charges.repeat(b))
            out["bonds"] = (self.pair_mask(graph), self.bonds.repeat(b))
        return out


def place_known(z: MolState, graph: MolGraph, scaffold: Scaffold, type_scale: float, alpha: torch.Tensor,
                sigma: torch.Tensor, xi: MolState | None = None) -> MolState:  # fmt: skip
    """``z`` with each molecule's known block set to its own centroid + α·shape + σ·(ξ − mean ξ)
    and types α·h + σ·ξ_h; α, σ are (B,) and ξ noise (None: no noise). A graph model's charges of
    the scaffold atoms and bond classes of the scaffold pairs are set the same way, α·one-hot + σ·ξ.
    Only the fields ``z`` holds are set (a model with categorical fields: the coordinates alone)."""
    mask, k, b = scaffold.mask(graph), scaffold.size, graph.num_graphs
    coords = z["coords"]
    a = alpha.to(z.dtype).reshape(b, 1, 1)
    block = coords[mask].reshape(b, k, 3)
    known_x = block.mean(1, keepdim=True) + a * scaffold.shape(coords)[None]
    if xi is not None:
        s = sigma.to(z.dtype).reshape(b, 1, 1)
        noise_x = xi["coords"][mask].reshape(b, k, 3)
        known_x = known_x + s * (noise_x - noise_x.mean(1, keepdim=True))
    coords = coords.clone()
    coords[mask] = known_x.reshape(b * k, 3)
    graph_fields = {}
    if "types" in z.values:
        types = z["types"]
        known_h = a * scaffold.features(types.shape[1], type_scale, types)[None]
        if xi is not None:
            known_h = known_h + sigma.to(z.dtype).reshape(b, 1, 1) * xi["types"][mask].reshape(b, k, -1)
        graph_fields["types"] = types.clone()
        graph_fields["types"][mask] = known_h.reshape(b * k, -1)
    for f in z.specs:
        if f.name in ("coords", "types"):
            continue
        rows = scaffold.mask(graph) if f.on == "atoms" else scaffold.pair_mask(graph)
        values = z[f.name].clone()
        known = scaffold.known_values(f.name, f, values)  # (r, columns), r rows per molecule
        block = a.reshape(b, 1, 1) * known[None]
        if xi is not None:
            block = block + sigma.to(z.dtype).reshape(b, 1, 1) * xi[f.name][rows].reshape(b, known.shape[0], -1)
        values[rows] = block.reshape(-1, f.columns)
        graph_fields[f.name] = values
    return z.with_values(coords=coords, **graph_fields).project()


def replace_known(z: MolState, t: torch.Tensor, graph: MolGraph, scaffold: Scaffold, type_scale: float,
                  schedule, noise: MoleculeNoise) -> MolState:  # fmt: skip
    """RePaint's replacement at time ``t`` (a scalar): the known block drawn from q(z_t | x₀) around
    its current centroid."""
    values = schedule(t.reshape(1).to(torch.float64))
    b = graph.num_graphs
    alpha, sigma = values.alpha.expand(b), values.sigma.expand(b)
    return place_known(z, graph, scaffold, type_scale, alpha, sigma, noise.randn())


def renoise(z: MolState, s: torch.Tensor, t: torch.Tensor, graph: MolGraph, schedule,
            noise: MoleculeNoise) -> MolState:  # fmt: skip
    """A draw of z_t from q(z_t | z_s) for t > s (the forward process between two times)."""
    a_s, s_s, _, _ = schedule(s.reshape(1).to(torch.float64))
    a_t, s_t, _, _ = schedule(t.reshape(1).to(torch.float64))
    a_ts = a_t / a_s
    std = (s_t**2 - a_ts**2 * s_s**2).clamp(min=0).sqrt()
    return (float(a_ts) * z + float(std) * noise.randn()).project()


class ScaffoldDenoiser(GuidedDenoiser):
    """x̂₀ replacement: the known block of x̂₀ takes the scaffold's shape (around x̂₀'s own centroid
    of that block) and exact types; ε̂ of the known atoms follows as (z − α x̂₀)/σ.

    ``reconstruction`` w > 0 adds reconstruction guidance (Ho et al. 2022, "Video diffusion
    models", eq. 7) before the replacement: the free atoms' x̂₀ moves by −(w α/2) ∇_z ‖x̂₀(z)_known −
    scaffold‖², so that the network itself would predict the scaffold from the free atoms (one
    backward pass through the network per evaluation).

    A network trained to take a scaffold (``model.known_atoms``, ``moldiff.diffusion.known``) is
    shown it as it was trained: clean, around the state's own centroid of those atoms, and flagged.

    ``guard`` (a :class:`~moldiff.guidance.valence.ValenceGuard`) finally moves the free atoms of
    x̂₀ out of bonding range of scaffold atoms with no room for them; ε̂ follows for every atom."""

    def __init__(self, inner, scaffold: Scaffold, type_scale: float, reconstruction: float = 0.0,
                 guard=None) -> None:  # fmt: skip
        super().__init__(inner)
        self.scaffold, self.type_scale, self.reconstruction = scaffold, float(type_scale), float(reconstruction)
        self.known_atoms = takes_known_atoms(inner)
        self.open_valence = takes_open_valence(inner)
        self.guard = guard

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        ones = torch.ones(graph.num_graphs, dtype=z.dtype, device=z.device)
        masks = self.scaffold.masks(graph)  # known rows of the fields on atoms (and pairs)
        mask = masks["atoms"]
        a, s, _, _ = self.coefficients(t, graph)
        z_net, graph_net = z, graph
        if self.known_atoms:  # the input the network was trained on: clean scaffold, flagged
            z_net = place_known(z, graph, self.scaffold, self.type_scale, ones, ones * 0)
            graph_net = replace(graph, known=mask,
                                open_valence=self.scaffold.open_valences(graph) if self.open_valence else None)
        if self.reconstruction > 0:
            with torch.enable_grad():
                z_in = z_net.requires_grad_()
                x0, _ = self.inner.x0_eps(z_in, t, graph_net)
                target = place_known(x0.detach(), graph, self.scaffold, self.type_scale, ones, ones * 0)
                diff = x0 - target
                error = sum((diff[f.name][masks[f.on]] ** 2).sum() for f in diff.specs)  # over the known rows
                g = grad(error, z_in)
            g = g.with_values(**{f.name: g[f.name].masked_fill(masks[f.on][:, None], 0) for f in g.specs})
            x0 = (x0.detach() - self.reconstruction * a / 2 * g).project()
            eps = (z - a * x0) / s
        else:
            x0, eps = self.inner.x0_eps(z_net, t, graph_net)
        x0 = place_known(x0, graph, self.scaffold, self.type_scale, ones, ones * 0)
        if self.guard is not None:
            x0 = self.guard(x0, graph)
            return x0, ((z - a * x0) / s).project()
        implied = (z - a * x0) / s  # ε̂ of the known atoms: what the replaced x̂₀ implies
        eps = eps.with_values(**{f.name: torch.where(masks[f.on][:, None], implied[f.name], eps[f.name])
                                 for f in eps.specs})  # fmt: skip
        return x0, eps.project()


def inpaint_solver(solver: Callable, scaffold: Scaffold, type_scale: float, *, jump: int = 1,
                   resamples: int = 1, reconstruction: float = 0.0, guard=None) -> Callable:  # fmt: skip
    """A solver (same signature as ``solver``) that keeps ``scaffold`` fixed: x̂₀ replacement at
    every network call (and the valence ``guard``, if given), RePaint's replacement after every
    ``jump`` intervals, each such segment run ``resamples`` times, and the exact scaffold at the end.

    ``jump`` ≥ the number of intervals with ``resamples`` = 1 leaves the solver's own grid whole
    (multistep and Heun solvers keep their order); ``jump`` = 1 replaces at every step as RePaint
    does. Cost: ``resamples`` × the solver's NFE.
    """
    if jump < 1 or resamples < 1:
        raise MoldiffError(f"inpainting needs jump >= 1 and resamples >= 1, got {jump}, {resamples}")

    def sample(denoiser, z: MolState, times: torch.Tensor, graph: MolGraph, noise: MoleculeNoise,
               callback=None) -> MolState:  # fmt: skip
        guided = ScaffoldDenoiser(denoiser, scaffold, type_scale, reconstruction, guard)
        schedule, k_total = denoiser.schedule, len(times) - 1
        hold = getattr(denoiser, "hold", None)
        if hold is not None:  # categorical fields (moldiff.solvers.categorical): the wrapper holds their classes
            hold(scaffold.known_classes(graph), then=lambda full: cap_scaffold_bonds(full, graph, scaffold))
        z = replace_known(z, times[0], graph, scaffold, type_scale, schedule, noise)
        for a in range(0, k_total, jump):
            b = min(a + jump, k_total)
            segment = times[a : b + 1]
            for r in range(resamples):
                z_end = solver(guided, z, segment, graph, noise)
                if r < resamples - 1:  # RePaint: back to the segment's start, then run it again
                    z = renoise(z_end, segment[-1], segment[0], graph, schedule, noise)
                    if hold is not None:
                        denoiser.renoise(segment[-1], segment[0])
                    z = replace_known(z, segment[0], graph, scaffold, type_scale, schedule, noise)
            z = z_end
            if b < k_total:
                z = replace_known(z, times[b], graph, scaffold, type_scale, schedule, noise)
            if callback is not None:
                callback(b - 1, z)
        ones = torch.ones(graph.num_graphs, dtype=z.dtype, device=z.device)
        z = place_known(z, graph, scaffold, type_scale, ones, ones * 0)  # the exact scaffold
        return cap_scaffold_bonds(z, graph, scaffold)

    return sample


def cap_scaffold_bonds(z: MolState, graph: MolGraph, scaffold: Scaffold) -> MolState:
    """A final state whose bonds (a graph model's) give no scaffold atom more new bond orders than
    its open valence (:func:`moldiff.guidance.valence.cap_new_bonds`): each pair whose class changes
    becomes that class's clean one-hot. ``z`` itself without bonds or open valences."""
    if "bonds" not in z.values or scaffold.open_valence is None:
        return z
    from moldiff.guidance.valence import cap_new_bonds

    spec = next(f for f in z.specs if f.name == "bonds")
    bonds = z["bonds"]
    classes = cap_new_bonds(bonds, graph, scaffold.open_valence)
    changed = classes != bonds.argmax(1)
    if not bool(changed.any()):
        return z
    bonds = bonds.clone()
    bonds[changed] = torch.nn.functional.one_hot(classes[changed], spec.columns).to(bonds.dtype) * spec.scale
    return z.with_values(bonds=bonds)


def align_to_scaffold(molecules: MolSet, scaffold: Scaffold) -> MolSet:
    """Each molecule translated so that its first k atoms' centroid is the scaffold's: the
    scaffold atoms then sit at the given coordinates (to float32 rounding)."""
    k = scaffold.size
    target = scaffold.positions.double().mean(0).numpy()
    pos = molecules.positions.astype(np.float64)
    for i in range(len(molecules)):
        a, b = molecules.ptr[i], molecules.ptr[i + 1]
        pos[a:b] += target - pos[a : a + k].mean(0)
    return MolSet(atomic_numbers=molecules.atomic_numbers, positions=pos, ptr=molecules.ptr,
                  charges=molecules.charges, ids=molecules.ids, smiles=molecules.smiles,
                  properties=molecules.properties, bonds=molecules.bonds, bond_ptr=molecules.bond_ptr)  # fmt: skip


def scaffold_atom_counts(generator, scaffold: Scaffold, n: int, seed: int, n_atoms: int | None,
                         open_hydrogens: int = 0) -> list[int]:  # fmt: skip
    """Atoms per molecule, scaffold included: ``n_atoms`` for all, or drawn from the training sizes
    that leave room for the scaffold and the ``open_hydrogens`` its atoms still need."""
    k = scaffold.size
    if n_atoms is not None:
        if n_atoms <= k:
            raise MoldiffError(f"n_atoms ({n_atoms}) must exceed the scaffold's {k} atoms (it counts them)")
        return [int(n_atoms)] * n
    smallest = k + max(open_hydrogens, 1)
    sizes = np.array(sorted(s for s in generator.atom_count_hist if s >= smallest), dtype=np.int64)
    if sizes.size == 0:
        raise MoldiffError(f"the model never saw a molecule of {smallest} atoms or more (the scaffold's {k} and the "
                           f"{open_hydrogens} hydrogens it needs); give n_atoms")  # fmt: skip
    p = np.array([generator.atom_count_hist[s] for s in sizes], dtype=np.float64)
    return np.random.default_rng([seed, 7]).choice(sizes, size=n, p=p / p.sum()).tolist()


def generate_with_scaffold(generator, scaffold: Scaffold, n: int, *, seed: int, solver: Callable,
                           times: torch.Tensor, n_atoms: int | None = None, jump: int = 1, resamples: int = 1,
                           open_hydrogens: int = 0, reconstruction: float = 0.0, guard=None,
                           **kwargs) -> tuple[MolSet, list[int]]:  # fmt: skip
    """``n`` molecules containing ``scaffold`` (its atoms first, at the given coordinates); other
    keyword arguments go to :func:`moldiff.sampling.generate` (batch_size, device, progress, cond).
    A graph model needs the scaffold's graph (:meth:`Scaffold.with_graph`): its charges and bonds are
    kept too, and no scaffold atom gets more new bond orders than its open valence."""
    from moldiff.sampling import generate

    if getattr(generator, "graph_model", False) and not scaffold.has_graph:
        raise MoldiffError("a model that generates bonds needs the scaffold's charges and bonds")
    counts = scaffold_atom_counts(generator, scaffold, n, seed, n_atoms, open_hydrogens)
    wrapped = inpaint_solver(solver, scaffold, generator.type_scale, jump=jump, resamples=resamples,
                             reconstruction=reconstruction, guard=guard)  # fmt: skip
    mols, seeds = generate(generator, n, seed=seed, solver=wrapped, times=times, n_atoms=counts, **kwargs)
    return align_to_scaffold(mols, scaffold), seeds
