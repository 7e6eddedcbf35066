"""EGNN with a pair channel: reads and predicts a feature on every unordered atom pair (bonds).

The EGNN of ``moldiff.nets.egnn`` plus a symmetric pair state e_ij on the unordered pairs i < j
of each molecule. Pairs stay unpadded: one row per pair inside a molecule, none across molecules,
so the cost grows with Σ n_b² of the batch, not with B · max n². Messages run on the ordered edges
(i, j) and (j, i) of each pair, as there; the pair state enters both messages and is updated from
their sum, which is symmetric in (i, j) by construction.

Update rule of layer l (d_ij = |x_i − x_j|, d0_ij the input distance, e_ij = e_ji):
    m_ij = φ_e(h_i, h_j, d_ij², d0_ij², e_ij) · sigmoid(a(m_ij))       (directed messages)
    h_i  ← h_i + φ_h(h_i, Σ_j m_ij / Z)
    e_ij ← e_ij + W_e (m_ij + m_ji)                                    (symmetric pair state)
    x_i  ← x_i + Σ_j (x_i − x_j) / (d_ij + 1) · tanh(φ_x(m_ij)) · r / Z
The first linear map of φ_e is split as in ``moldiff.nets.egnn``: per-node projections of h_i and h_j and
one per-pair projection of (e_ij, d_ij², d0_ij²) shared by both directions, so each layer costs per
pair two H×H products per direction (messages, coordinate weights) and two H×H_e products
(the pair projection and the pair update), where H_e = ``pair_hidden``.

Heads: atom outputs φ_out(h_i) (types and charges share one linear head: concatenated widths);
pair outputs φ_pair(e_ij + V h_i + V h_j + u d_ij²) on the final state and coordinates, hence
symmetric in (i, j). Both heads start at zero, like the coordinate-only EGNN's output head.

Self-conditioning: feed the previous prediction as extra input columns (its logits or
probabilities beside the noisy atom features, its bond probabilities and the distances of its
coordinates beside the noisy pair features); ``in_features`` and ``pair_features`` are the total
widths. ``precision`` ``bf16`` runs the layers' linear maps in bfloat16 (``moldiff.nets.precision``);
embeddings, heads, the residual streams h and e, the sums over neighbours and the coordinates keep
the input's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from moldiff.data.com import remove_mean
from moldiff.nets.graph import fully_connected_edges
from moldiff.nets.precision import matmuls_in


def molecule_pairs(ptr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unordered atom pairs of each molecule, in the row order every pair tensor uses.

    Molecule by molecule, then by ``i``, then by ``j`` (the upper triangle of each molecule's
    atom block, row-major): the order of ``MolGraph.with_pairs`` and of ``MolBatch.bond_class``.

    Args:
        ptr: (B + 1,) start offsets of each molecule's atoms.
    Returns:
        (i, j): each (P,) global atom indices, i < j, P = Σ n_b (n_b − 1) / 2.
    """
    src, dst = fully_connected_edges(ptr)
    keep = src < dst
    return src[keep], dst[keep]


def pair_rows(ptr: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Rows of :func:`molecule_pairs` that hold the pairs (i, j) (to place bonds in pair tensors).

    Args:
        ptr: (B + 1,) start offsets of each molecule's atoms.
        i: (K,) global atom indices of one end of each pair.
        j: (K,) the other end, in the same molecule (either order).
    Returns:
        (K,) long row indices into the (P, ·) pair tensors.
    """
    lo, hi = torch.minimum(i, j), torch.maximum(i, j)
    if lo.numel() and (lo.min() < 0 or hi.max() >= ptr[-1]):
        raise ValueError(f"pair_rows: atom indices must lie in [0, {int(ptr[-1])})")
    mol = torch.searchsorted(ptr, lo, right=True) - 1
    if lo.numel() and ((lo == hi).any() or (hi >= ptr[mol + 1]).any()):
        raise ValueError("pair_rows takes pairs of two different atoms of the same molecule")
    counts = ptr[1:] - ptr[:-1]
    per_mol = counts * (counts - 1) // 2
    first_row = torch.cumsum(per_mol, 0) - per_mol
    n, a, b = counts[mol], lo - ptr[mol], hi - ptr[mol]
    # rows before atom a's run in its molecule, then the offset of b inside that run
    return first_row[mol] + a * (2 * n - a - 1) // 2 + (b - a - 1)


MAX_FED_DISTANCE = 10.0  # Å: a self-conditioned network reads previous pair distances up to this


class PairOutput(NamedTuple):
    """What :class:`PairEGNN` returns: x (N, 3) zero-CoM update, atoms (N, out), pairs (P, pair_out)."""

    x: torch.Tensor
    atoms: torch.Tensor
    pairs: torch.Tensor


class PairEGNNLayer(nn.Module):
    def __init__(self, hidden: int, pair_hidden: int, attention: bool = True, coords_range: float = 15.0,
                 norm_factor: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        self.src_proj = nn.Linear(hidden, hidden)
        self.dst_proj = nn.Linear(hidden, hidden, bias=False)
        self.pair_proj = nn.Linear(pair_hidden + 2, hidden, bias=False)  # (e_ij, d², d0²): once per pair
        self.edge_mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.attention = nn.Linear(hidden, 1) if attention else None
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.pair_update = nn.Linear(hidden, pair_hidden)
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)  # start with near-zero coordinate moves
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.coords_range = coords_range
        self.norm_factor = norm_factor

    def forward(self, h, x, e, pi, pj, d0):
        """One layer on pairs (pi, pj); the directed edges are (pi → pj) then (pj → pi)."""
        p = pi.shape[0]
        src, dst = torch.cat([pi, pj]), torch.cat([pj, pi])
        half = x.index_select(0, pi) - x.index_select(0, pj)
        d2 = (half * half).sum(-1, keepdim=True)
        pair_in = self.pair_proj(torch.cat([e, d2, d0], -1))
        # index_select, not [src]: its backward is an index_add, far faster than [ ]'s index_put in bfloat16
        edge_in = (self.src_proj(h).index_select(0, src) + self.dst_proj(h).index_select(0, dst)
                   + torch.cat([pair_in, pair_in]))  # fmt: skip
        m = self.edge_mlp(edge_in)
        if self.attention is not None:
            m = m * torch.sigmoid(self.attention(m))
        agg = torch.zeros_like(h).index_add_(0, src, m.to(h.dtype)) / self.norm_factor
        h = h + self.node_mlp(torch.cat([h, agg], -1)).to(h.dtype)
        e = e + self.pair_update(m[:p] + m[p:]).to(e.dtype)

        weight = torch.tanh(self.coord_mlp(m)).to(x.dtype) * self.coords_range
        diff = torch.cat([half, -half])
        move = diff / (torch.cat([d2, d2]).sqrt() + 1.0) * weight
        x = x + torch.zeros_like(x).index_add_(0, src, move) / self.norm_factor
        return h, x, e


class PairEGNN(nn.Module):
    """E(3)-equivariant EGNN on atoms and unordered atom pairs, with atom and pair heads.

    Args:
        in_features: width of the atom input ``h`` (e.g. noisy types and charges, plus any
            self-conditioning columns). Time and the condition are appended inside.
        pair_features: width of the pair input ``e`` (e.g. noisy bond classes, plus any
            self-conditioning columns); 0 for none.
        out_features: width of the atom head (e.g. type logits then charge logits).
        pair_out: width of the pair head (e.g. bond-class logits).
        hidden: atom and message width H.
        layers: message-passing layers.
        pair_hidden: width H_e of the pair state.
        cond_features: width of the per-molecule condition (0 for none).
        attention: gate messages by sigmoid(a(m_ij)).
        norm_factor: Z, the divisor of the sums over neighbours.

    Shapes:
        x (N, 3), h (N, in_features), e (P, pair_features) in :func:`molecule_pairs` order,
        t (B,), batch (N,), ptr (B + 1,), cond (B, cond_features) or None, pairs (P, 2) or None:
        the pairs of :func:`molecule_pairs` if the caller has them already (``MolGraph.pairs``).
        Returns :class:`PairOutput`: x (N, 3) zero-CoM coordinate update (E(3)-equivariant),
        atoms (N, out_features) invariant, pairs (P, pair_out) invariant and symmetric in (i, j).
    """

    def __init__(self, in_features: int, pair_features: int, out_features: int, pair_out: int,
                 hidden: int = 128, layers: int = 6, pair_hidden: int = 64, cond_features: int = 0,
                 attention: bool = True, norm_factor: float = 1.0, self_conditioning: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.in_features, self.pair_features, self.cond_features = in_features, pair_features, cond_features
        self.self_conditioning = self_conditioning
        self.precision = "fp32"  # or "bf16": a run-time choice, not part of the weights
        # self-conditioning reads a previous clean estimate: its atom and pair features and its
        # pair distances (invariant), zeros when there is none
        fed_back_atoms, fed_back_pairs = (out_features, pair_out + 1) if self_conditioning else (0, 0)
        self.embed = nn.Linear(in_features + 1 + cond_features + fed_back_atoms, hidden)
        self.pair_embed = nn.Linear(pair_features + fed_back_pairs, pair_hidden)
        self.layers = nn.ModuleList(
            [PairEGNNLayer(hidden, pair_hidden, attention=attention, norm_factor=norm_factor) for _ in range(layers)]
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, out_features))
        self.node_to_pair = nn.Linear(hidden, pair_hidden, bias=False)
        self.dist_to_pair = nn.Linear(1, pair_hidden, bias=False)
        self.pair_head = nn.Sequential(nn.SiLU(), nn.Linear(pair_hidden, pair_hidden), nn.SiLU(),
                                       nn.Linear(pair_hidden, pair_out))  # fmt: skip
        for head in (self.out[1], self.pair_head[3]):  # predictions start at zero: a calm first step
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, x, h, e, t, batch, ptr, cond=None, pairs=None, previous: PairOutput | None = None) -> PairOutput:
        pi, pj = molecule_pairs(ptr) if pairs is None else pairs.unbind(1)
        self._check(x, h, e, t, batch, ptr, cond, pi.shape[0])
        feats = [h, t[batch, None].to(h.dtype)]
        if self.cond_features:
            feats.append(cond[batch].to(h.dtype))
        half = x.index_select(0, pi) - x.index_select(0, pj)
        d0 = (half * half).sum(-1, keepdim=True)
        if self.self_conditioning:
            fed_atoms, fed_pairs = self._fed_back(previous, x, h, e, pi, pj)
            feats.append(fed_atoms)
            e = torch.cat([e, fed_pairs], -1)
        hid, pair = self.embed(torch.cat(feats, -1)), self.pair_embed(e)
        y = x
        with matmuls_in(self.precision, x.device.type):  # the per-pair work: nearly all the cost
            for layer in self.layers:
                hid, y, pair = layer(hid, y, pair, pi, pj, d0)
        half = y.index_select(0, pi) - y.index_select(0, pj)
        node = self.node_to_pair(hid)  # summed over both ends: symmetric in (i, j)
        dist = self.dist_to_pair((half * half).sum(-1, keepdim=True))
        pair = pair + node.index_select(0, pi) + node.index_select(0, pj) + dist
        return PairOutput(remove_mean(y - x, batch, ptr.shape[0] - 1), self.out(hid), self.pair_head(pair))

    def _fed_back(self, previous: PairOutput | None, x, h, e, pi, pj) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, out_features) and (P, pair_out + 1) inputs from a previous clean estimate
        (coordinates, atom and pair features); zeros without one."""
        if previous is None:
            atoms = h.new_zeros(h.shape[0], self.embed.in_features - h.shape[1] - 1 - self.cond_features)
            return atoms, e.new_zeros(e.shape[0], self.pair_embed.in_features - e.shape[1])
        half = previous.x.index_select(0, pi) - previous.x.index_select(0, pj)
        # the distance, capped: beyond bonding range its value says nothing, and early estimates are far off
        d = half.norm(dim=-1, keepdim=True).clamp(max=MAX_FED_DISTANCE)
        return previous.atoms.to(h.dtype), torch.cat([previous.pairs.to(e.dtype), d.to(e.dtype)], -1)

    def _check(self, x, h, e, t, batch, ptr, cond, p: int) -> None:
        n, b = x.shape[0], ptr.shape[0] - 1
        if (x.shape != (n, 3) or h.shape != (n, self.in_features) or e.shape != (p, self.pair_features)
                or batch.shape != (n,) or t.shape != (b,)):  # fmt: skip
            raise ValueError(
                f"PairEGNN expects x (N,3), h (N,{self.in_features}), e (P,{self.pair_features}), batch (N,), "
                f"t (B,); got {tuple(x.shape)}, {tuple(h.shape)}, {tuple(e.shape)}, {tuple(batch.shape)}, "
                f"{tuple(t.shape)} with B={b}, P={p}"
            )
        if self.cond_features and (cond is None or cond.shape != (b, self.cond_features)):
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"PairEGNN expects cond ({b}, {self.cond_features}), got {got}")
        if not self.cond_features and cond is not None:
            raise ValueError("this PairEGNN was built without a condition (cond_features=0)")


__all__ = ["PairEGNN", "PairOutput", "molecule_pairs", "pair_rows"]
