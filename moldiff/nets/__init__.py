"""Equivariant backbones. They know nothing of schedules, solvers or RDKit.

A backbone maps ``(x (N,3), h (N,F), t (B,), batch (N,), ptr (B+1,), cond (B,C) | None)`` to
``(x_out (N,3), h_out (N,F))``: coordinate outputs are E(3)-equivariant and zero-CoM, feature
outputs invariant. New backbones (e.g. e3nn tensor products) register in ``BACKBONES``.
``PropertyPredictor`` reuses the EGNN layers with an invariant pooled head: (B, P) properties.
``PairEGNN`` also reads and predicts a feature on every unordered atom pair (bonds): its contract
adds ``e (P, F_pair)`` in and ``(P, K)`` pair logits out, so it registers in ``GRAPH_BACKBONES``.
"""

from moldiff.nets.egnn import EGNN
from moldiff.nets.egnn_pairs import PairEGNN
from moldiff.nets.predictor import PropertyPredictor

BACKBONES = {"egnn": EGNN}
GRAPH_BACKBONES = {"egnn_pairs": PairEGNN}

__all__ = ["BACKBONES", "EGNN", "GRAPH_BACKBONES", "PairEGNN", "PropertyPredictor"]
