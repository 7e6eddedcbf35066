"""E(n)-equivariant graph network (Satorras et al. 2021) in the form EDM uses for molecules,
rewritten for speed on CPU: no padding, fully connected graphs inside each molecule, and the
first edge layer split into per-node projections (W[h_i, h_j] = W_a h_i + W_b h_j), so the
per-edge cost is one H×H matrix product for messages and one for coordinate weights.

Update rule of layer l (d_ij = |x_i − x_j|):
    m_ij = φ_e(h_i, h_j, d_ij², d0_ij²) · sigmoid(a(m_ij))          (messages with attention)
    h_i  ← h_i + φ_h(h_i, Σ_j m_ij / Z)
    x_i  ← x_i + Σ_j (x_i − x_j) / (d_ij + 1) · tanh(φ_x(m_ij)) · r / Z
Time t and an optional per-molecule condition are concatenated to the input features.
``precision`` ``bf16`` runs the layers' linear maps in bfloat16 (``moldiff.nets.precision``); the
embedding, the output head, the residual stream h, the sums over neighbours and the coordinates
keep the input's dtype.

Shapes:
    x (N, 3), h (N, F), t (B,), batch (N,), ptr (B + 1,), cond (B, C) or None
    returns x_out (N, 3) zero-CoM, h_out (N, F)
"""

from __future__ import annotations

import torch
from torch import nn

from moldiff.data.com import remove_mean
from moldiff.nets.graph import fully_connected_edges
from moldiff.nets.precision import matmuls_in


class EGNNLayer(nn.Module):
    def __init__(self, hidden: int, attention: bool = True, coords_range: float = 15.0,
                 norm_factor: float = 1.0) -> None:  # fmt: skip
        super().__init__()
        self.src_proj = nn.Linear(hidden, hidden)
        self.dst_proj = nn.Linear(hidden, hidden, bias=False)
        self.dist_proj = nn.Linear(2, hidden, bias=False)
        self.edge_mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.attention = nn.Linear(hidden, 1) if attention else None
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        last = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(last.weight, gain=0.001)  # start with near-zero coordinate moves
        self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)
        self.coords_range = coords_range
        self.norm_factor = norm_factor

    def forward(self, h, x, src, dst, dist_attr):
        diff = x.index_select(0, src) - x.index_select(0, dst)
        d2 = (diff * diff).sum(-1, keepdim=True)
        # index_select, not [src]: its backward is an index_add, far faster than [ ]'s index_put in bfloat16
        edge_in = (self.src_proj(h).index_select(0, src) + self.dst_proj(h).index_select(0, dst)
                   + self.dist_proj(torch.cat([d2, dist_attr], -1)))
        m = self.edge_mlp(edge_in)
        if self.attention is not None:
            m = m * torch.sigmoid(self.attention(m))
        agg = torch.zeros_like(h).index_add_(0, src, m.to(h.dtype)) / self.norm_factor
        h = h + self.node_mlp(torch.cat([h, agg], -1)).to(h.dtype)

        weight = torch.tanh(self.coord_mlp(m)).to(x.dtype) * self.coords_range
        move = diff / (d2.sqrt() + 1.0) * weight
        x = x + torch.zeros_like(x).index_add_(0, src, move) / self.norm_factor
        return h, x


class EGNN(nn.Module):
    """EGNN backbone. ``in_features`` are the diffused atom features (e.g. scaled one-hot types)."""

    def __init__(self, in_features: int, hidden: int = 128, layers: int = 6, cond_features: int = 0,
                 attention: bool = True, norm_factor: float = 1.0, known_atoms: bool = False,
                 known_valence: bool = False) -> None:  # fmt: skip
        super().__init__()
        if known_valence and not known_atoms:
            raise ValueError("known_valence needs known_atoms")
        self.in_features, self.cond_features, self.known_atoms = in_features, cond_features, known_atoms
        self.known_valence = known_valence
        self.precision = "fp32"  # or "bf16": a run-time choice, not part of the weights
        # input: types, time, condition, then the known-atom flag and the known atoms' open valence
        # (last, so warm starts widen them at zero)
        self.embed = nn.Linear(in_features + 1 + cond_features + int(known_atoms) + int(known_valence), hidden)
        self.layers = nn.ModuleList(
            [EGNNLayer(hidden, attention=attention, norm_factor=norm_factor) for _ in range(layers)]
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, in_features))
        nn.init.zeros_(self.out[1].weight)  # predictions start at zero: a calm first step
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x, h, t, batch, ptr, cond=None, known=None, open_valence=None):
        n, b = x.shape[0], ptr.shape[0] - 1
        if x.shape != (n, 3) or h.shape != (n, self.in_features) or batch.shape != (n,) or t.shape != (b,):
            raise ValueError(
                f"EGNN expects x (N,3), h (N,{self.in_features}), batch (N,), t (B,); got "
                f"{tuple(x.shape)}, {tuple(h.shape)}, {tuple(batch.shape)}, {tuple(t.shape)} with B={b}"
            )
        feats = [h, t[batch, None].to(h.dtype)]
        if self.cond_features:
            if cond is None or cond.shape != (b, self.cond_features):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"EGNN expects cond ({b}, {self.cond_features}), got {got}")
            feats.append(cond[batch].to(h.dtype))
        if self.known_atoms:
            feats.append((known if known is not None else torch.zeros_like(batch, dtype=torch.bool)).to(h.dtype)[:, None])
        elif known is not None:
            raise ValueError("this EGNN was not built to take known atoms (model.known_atoms)")
        if self.known_valence:  # scaled like the type features: 1 for four new neighbours
            valence = open_valence if open_valence is not None else torch.zeros_like(batch)
            feats.append((valence.to(h.dtype) / 4.0)[:, None])
        elif open_valence is not None:
            raise ValueError("this EGNN was not built to read open valences (model.known_valence)")
        src, dst = fully_connected_edges(ptr)
        diff0 = x[src] - x[dst]
        dist_attr = (diff0 * diff0).sum(-1, keepdim=True)
        hid = self.embed(torch.cat(feats, -1))
        y = x
        with matmuls_in(self.precision, x.device.type):  # the per-edge work: nearly all the cost
            for layer in self.layers:
                hid, y = layer(hid, y, src, dst, dist_attr)
        return remove_mean(y - x, batch, b), self.out(hid)
