"""The conditioning vector of a conditional model: normalised properties, each with a "present" flag.

A model trained for classifier-free guidance sees, per molecule, ``c = [(y − μ)/s ⊙ m, m]``
(B, 2P): the P properties normalised with the training set's mean μ and standard deviation s, and
one flag m_k ∈ {0, 1} per property. An absent property is 0 with flag 0; the null condition (all
absent) is the zero vector, so the network learns an unconditional prediction from the same
weights (Ho & Salimans 2022). Because each property has its own flag, a model trained on several
properties with some dropped one by one (``train.cond_property_drop_prob``) can be sampled with
targets for any subset of them, the others marginalised. With one property this is the usual
``[y·m, m]``. The input width 2P follows from the config's ``data.properties`` alone
(:func:`condition_features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from moldiff.errors import MoldiffError


def condition_features(properties: list[str] | tuple[str, ...]) -> int:
    """Width of the conditioning vector for these property names: 2P (values and flags)."""
    return 2 * len(properties)


def null_condition(n: int, properties: int, *, like: torch.Tensor | None = None) -> torch.Tensor:
    """The "no condition" vector for ``n`` molecules: zeros, every flag 0, (n, 2P)."""
    kw = {} if like is None else {"dtype": like.dtype, "device": like.device}
    return torch.zeros(n, 2 * properties, **kw)


@dataclass(frozen=True)
class PropertyNorm:
    """Per-property mean and standard deviation used to normalise conditions (and predictor targets).

    Shapes: names (P,), mean (P,), std (P,).
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.mean) == len(self.std):
            raise ValueError(f"PropertyNorm: {len(self.names)} names, {len(self.mean)} means, {len(self.std)} stds")

    @classmethod
    def fit(cls, properties: dict[str, np.ndarray], names: list[str] | tuple[str, ...]) -> PropertyNorm:
        """Mean and std of each named column (NaN ignored; a constant column gets std 1)."""
        means, stds = [], []
        for name in names:
            values = np.asarray(properties[name], dtype=np.float64)
            values = values[np.isfinite(values)]
            if values.size == 0:
                raise MoldiffError(f"property {name!r} has no finite value to normalise with")
            std = float(values.std())
            means.append(float(values.mean()))
            stds.append(std if std > 0 else 1.0)
        return cls(tuple(names), tuple(means), tuple(stds))

    # ------------------------------------------------------------ checkpoints
    def to_dict(self) -> dict[str, list[float]]:
        return {name: [m, s] for name, m, s in zip(self.names, self.mean, self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> PropertyNorm:
        names = tuple(data)
        return cls(names, tuple(float(data[k][0]) for k in names), tuple(float(data[k][1]) for k in names))

    # ------------------------------------------------------------------ maths
    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device)
        return mean, std

    def normalize(self, values: torch.Tensor) -> torch.Tensor:
        """Physical values (B, P) -> normalised (B, P)."""
        mean, std = self._stats(values)
        return (values - mean) / std

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised values (B, P) -> physical (B, P)."""
        mean, std = self._stats(values)
        return values * std + mean

    def index(self, name: str) -> int:
        if name not in self.names:
            raise MoldiffError(f"property {name!r} is not one of this model's ({', '.join(self.names)})")
        return self.names.index(name)

    def encode(self, values: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """The conditioning vector (B, 2P) of physical ``values`` (B, P).

        ``present`` marks what is kept: (B,) bool for whole molecules' conditions, or (B, P) bool
        per property (default: everything). Absent values may be NaN; they are encoded as 0.
        """
        if values.dim() != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"expected values (B, {len(self.names)}), got {tuple(values.shape)}")
        flag = torch.ones_like(values, dtype=torch.bool)
        if present is not None:
            flag = (present[:, None] if present.dim() == 1 else present).to(values.device).expand_as(values)
        normalized = torch.where(flag, self.normalize(values), torch.zeros_like(values))
        return torch.cat([normalized, flag.to(values.dtype)], dim=1)


def drop_conditions(n: int, prob: float, generator: torch.Generator | None = None, *, properties: int = 1,
                    property_prob: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Which conditions to keep in a training batch: (n, properties) bool.

    Each molecule's whole condition is dropped with ``prob`` (the unconditional model); of the kept
    ones, each property is dropped on its own with ``property_prob`` (so the model learns every
    subset of its properties). Both draws always happen, so the random stream does not depend on
    the probabilities' values being zero.
    """
    whole = torch.rand(n, 1, generator=generator) >= prob
    each = torch.rand(n, properties, generator=generator) >= property_prob
    return whole & each
