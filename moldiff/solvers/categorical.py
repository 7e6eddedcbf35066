"""The one categorical step every solver goes through, for a state with categorical fields
(``moldiff.diffusion.discrete``).

:class:`CategoricalSteps` wraps the denoiser so that a solver only ever sees the Gaussian fields
(coordinates): its arithmetic never touches a class. The categorical fields live in the wrapper as
classes and move whenever the solver asks for a prediction at an earlier time than the last one:
from that last time t to the new time s, each entry is drawn from q(x_s | x_t, x̂₀)
(``moldiff.diffusion.categorical.reverse_step``) with the network's x̂₀ probabilities at t, from
the molecule's own seeded uniforms (``MoleculeNoise.uniforms``). A stage or corrector call at the
same time moves nothing; every molecule keeps its own clock, as the adaptive solver's do. After
the solver, :meth:`CategoricalSteps.finish` takes the likeliest clean class at the last time.

Entries :meth:`CategoricalSteps.hold` keeps (a scaffold's atoms and bonds) are drawn from the
forward process q(x_s | x_0) of their given class at every step instead, RePaint's replacement for
classes, and take that class exactly at the end.

So every solver of ``moldiff.solvers.SOLVERS`` moves the classes on the times it evaluates at, the
same way.
"""

from __future__ import annotations

import torch

from moldiff.diffusion import categorical as C
from moldiff.diffusion.denoiser import PredictionViews
from moldiff.diffusion.discrete import class_probabilities, one_hot
from moldiff.diffusion.state import MoleculeNoise, MolGraph, MolState


class CategoricalSteps(PredictionViews):
    """A denoiser for the Gaussian fields of ``z`` whose categorical fields it moves itself.

    Args:
        denoiser: the model's denoiser (``class_priors`` set for every categorical field).
        z: (the full state at the first time) its categorical fields' one-hots give the start classes.
        noise: the molecules' seeded noise (its ``uniforms`` drive the class draws).
    """

    def __init__(self, denoiser, z: MolState, noise: MoleculeNoise) -> None:
        self.inner, self.specs, self.graph, self.noise = denoiser, z.specs, z.graph, noise
        self.categorical = [f for f in z.specs if f.kind == "categorical"]
        self.classes = {f.name: z[f.name].argmax(1) for f in self.categorical}
        self.priors = {f.name: denoiser.class_priors[f.name] for f in self.categorical}
        self._t: torch.Tensor | None = None  # (B,) each molecule's time of the last prediction
        self._probs: dict[str, torch.Tensor] = {}  # that prediction's p(x_0 | x_t), (rows, K) float64
        self._held: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name: ((rows,) bool, (held,) classes)
        self._then = None

    def __getattr__(self, name):  # schedule, nfe, coefficients, feeding_back, ...: the model's own
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ the solver's view
    def predict(self, kind: str, z: MolState, t: torch.Tensor, graph: MolGraph) -> MolState:
        return self._leave(self.inner.predict(kind, self._enter(z, t), t, graph), t)

    def x0_eps(self, z: MolState, t: torch.Tensor, graph: MolGraph) -> tuple[MolState, MolState]:
        x0, eps = self.inner.x0_eps(self._enter(z, t), t, graph)
        return self._leave(x0, t), eps.of_kind("gaussian")

    def hold(self, known: dict[str, tuple[torch.Tensor, torch.Tensor]], then=None) -> None:
        """Keep some entries on given clean classes: ``known`` {name: ((rows,) bool, (held,) classes)}.

        From now on each held entry is a draw of q(x_s | x_0 = its class) at every new time s (from
        the uniforms its reverse step would have used), and :meth:`finish` gives it the class itself.
        ``then`` (full state → full state) runs last in :meth:`finish` (a scaffold's valence cap)."""
        for name, (rows, classes) in known.items():
            self._held[name] = (rows.cpu(), classes.cpu())
        self._then = then

    def renoise(self, s: torch.Tensor, t: torch.Tensor) -> None:
        """Every class drawn from the forward process q(x_t | x_s), t > s scalars (RePaint's jump back;
        held entries: from q(x_t | x_0) of their class)."""
        g, t = self.graph, t.detach().double().cpu().reshape(1)
        ratio = C.keep_probability(t) / C.keep_probability(s.detach().double().cpu().reshape(1)).clamp_min(1e-12)
        for f in self.categorical:
            per_molecule = _per_molecule(g, f.on)
            u = self.noise.uniforms(f.name, per_molecule)
            x = self.classes[f.name].cpu()
            stay = torch.nn.functional.one_hot(x, f.columns).double()
            probs = ratio * stay + (1.0 - ratio) * self.priors[f.name].to(stay)
            if f.name in self._held:
                held, known = self._held[f.name]
                clean = torch.nn.functional.one_hot(known, f.columns).double()
                probs[held] = C.noised_probabilities(clean, t.expand(known.shape[0]), self.priors[f.name])
            self.classes[f.name] = C.sample(probs, u=u).to(self.classes[f.name].device)
        self._t = t.expand(g.num_graphs).clone()

    def gaussian(self, z: MolState) -> MolState:
        """The fields a solver moves (every Gaussian one) of a full state."""
        return z.of_kind("gaussian")

    def finish(self, z: MolState) -> MolState:
        """The full final state: the solver's Gaussian fields ``z`` and each categorical entry's
        likeliest clean class given its class at the last prediction (its one-hot, scaled)."""
        if self._t is not None:
            for f in self.categorical:
                rows = self.graph.index(f.on)
                t = self._t[rows].clamp_min(1e-9)  # a last prediction at t = 0 (adaptive): its x̂₀ given x_0
                probs = C.reverse_probabilities(self.classes[f.name], self._probs[f.name], t, torch.zeros_like(t),
                                                self.priors[f.name])  # fmt: skip
                self.classes[f.name] = probs.argmax(1)
        for name, (rows, known) in self._held.items():
            x = self.classes[name].clone()
            x[rows.to(x.device)] = known.to(x.device)
            self.classes[name] = x
        full = self._full(z)
        return full if self._then is None else self._then(full)

    # ------------------------------------------------------------------ particles (steering)
    def molecules(self, chosen: torch.Tensor, graph: MolGraph, noise: MoleculeNoise) -> CategoricalSteps:
        """The molecules ``chosen`` (M,) of this wrapper, in that order (one may repeat), as a new
        wrapper on ``graph`` (theirs) drawing from ``noise``: each keeps its classes, its time and its
        last prediction, so a resampled particle carries its classes with its coordinates."""
        out = object.__new__(type(self))  # not copy.copy: __getattr__ would ask a bare object for .inner
        out.__dict__.update(self.__dict__)
        out.graph, out.noise = graph, noise
        rows = {on: _molecule_rows(self.graph, on, chosen.cpu()) for on in ("atoms", "pairs")}
        out.classes = {f.name: self.classes[f.name][rows[f.on].to(self.classes[f.name].device)] for f in self.categorical}
        on = {f.name: f.on for f in self.categorical}
        out._probs = {name: p[rows[on[name]]] for name, p in self._probs.items()}
        out._t = None if self._t is None else self._t[chosen.cpu()]
        return out

    def adopt(self, other: CategoricalSteps) -> None:
        """Take ``other``'s classes, times and last predictions (a wrapper on a graph of the same
        molecules, e.g. :meth:`molecules` of the particles kept)."""
        self.classes, self._t, self._probs = dict(other.classes), other._t, dict(other._probs)

    def redraw(self, molecules: torch.Tensor) -> None:
        """Draw the classes of the ``molecules`` (B,) bool afresh from the prior, from their own
        seeded uniforms (particles that start from their own prior draw)."""
        for f in self.categorical:
            rows = molecules.cpu()[self.graph.index(f.on).cpu()]
            per_molecule = _per_molecule(self.graph, f.on)
            u = self.noise.uniforms(f.name, per_molecule, molecules.cpu())
            x = self.classes[f.name].clone()
            x[rows.to(x.device)] = C.sample(self.priors[f.name].expand(u.shape[0], -1), u=u).to(x.device)
            self.classes[f.name] = x

    def clean_estimate(self, x0: MolState) -> MolState:
        """The full state of ``x0``, this wrapper's last prediction of the Gaussian fields, with each
        categorical entry's likeliest clean class under that prediction (its scaled one-hot): the
        molecule that x̂₀ reads as."""
        values = {f.name: x0[f.name] if f.kind == "gaussian" else
                  one_hot(self._probs[f.name].argmax(1).to(x0.device), f, x0.dtype) for f in self.specs}  # fmt: skip
        return MolState(values, self.specs, x0.graph)

    # ------------------------------------------------------------------ the classes
    def _full(self, z: MolState) -> MolState:
        values = {f.name: z[f.name] if f.kind == "gaussian" else one_hot(self.classes[f.name], f, z.dtype)
                  for f in self.specs}  # fmt: skip
        return MolState(values, self.specs, self.graph)

    def _enter(self, z: MolState, t: torch.Tensor) -> MolState:
        """The full state at ``t`` (B,): first each molecule whose ``t`` is earlier than its last
        prediction's takes one reverse step there."""
        t = t.detach().double().cpu().clamp(0.0, 1.0)
        if self._t is not None:
            moving = t < self._t
            if bool(moving.any()):
                self._step(moving, t)
        return self._full(z)

    def _leave(self, out: MolState, t: torch.Tensor) -> MolState:
        self._t = t.detach().double().cpu().clamp(0.0, 1.0)
        self._probs = {f.name: class_probabilities(out[f.name], f).cpu() for f in self.categorical}
        return out.of_kind("gaussian")

    def _step(self, moving: torch.Tensor, s: torch.Tensor) -> None:
        """x_s ~ q(x_s | x_t, x̂₀) for the rows of the ``moving`` (B,) molecules, t their last time."""
        g = self.graph
        for f in self.categorical:
            mol = g.index(f.on).cpu()
            rows = moving[mol]
            per_molecule = _per_molecule(g, f.on)
            u = self.noise.uniforms(f.name, per_molecule, moving)
            x = self.classes[f.name]
            new = C.reverse_step(x.cpu()[rows], self._probs[f.name][rows], self._t[mol][rows], s[mol][rows],
                                 self.priors[f.name], u=u)  # fmt: skip
            if f.name in self._held:  # held entries: a forward draw from their own class instead
                held, known = self._held[f.name]
                where = held[rows]  # among the moving rows
                clean = torch.nn.functional.one_hot(known[rows[held]], f.columns).double()
                forward = C.noised_probabilities(clean, s[mol][rows][where], self.priors[f.name])
                new[where] = C.sample(forward, u=u[where])
            x = x.clone()
            x[rows.to(x.device)] = new.to(x.device)
            self.classes[f.name] = x


def _per_molecule(graph: MolGraph, on: str) -> torch.Tensor:
    """(B,) rows of a field ``on`` atoms or pairs in each molecule, on the CPU (the uniforms' side)."""
    return (graph.num_atoms if on == "atoms" else graph.num_pairs).cpu()


def _molecule_rows(graph: MolGraph, on: str, chosen: torch.Tensor) -> torch.Tensor:
    """(rows,) the rows of a field ``on`` atoms or pairs that belong to the molecules ``chosen`` (M,),
    molecule by molecule in that order."""
    counts = _per_molecule(graph, on)
    starts = counts.cumsum(0) - counts
    n = counts[chosen]
    within = torch.arange(int(n.sum())) - torch.repeat_interleave(n.cumsum(0) - n, n)
    return torch.repeat_interleave(starts[chosen], n) + within


def start_classes(z: MolState, noise: MoleculeNoise, priors: dict[str, torch.Tensor]) -> MolState:
    """``z`` with every categorical field drawn from its prior (the state at t = 1), from each
    molecule's own seeded uniforms."""
    g, values = z.graph, {}
    for f in z.specs:
        if f.kind == "categorical":
            per_molecule = _per_molecule(g, f.on)
            u = noise.uniforms(f.name, per_molecule)
            probs = priors[f.name].expand(u.shape[0], -1)
            values[f.name] = one_hot(C.sample(probs, u=u).to(z.device), f, z.dtype)
    return z.with_values(**values)


__all__ = ["CategoricalSteps", "start_classes"]
