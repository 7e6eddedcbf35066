"""Training a property predictor (``moldiff train-predictor``): the E(3)-invariant regressor of
``moldiff.nets.predictor`` on QM9 properties or RDKit drug-likeness scores.

A *noisy* predictor (``noisy: true``) learns p(y | z_t) on states z_t = α_t z_0 + σ_t ε of the
configured diffusion schedule, t ~ U(0, 1), and is what regressor guidance differentiates
(EEGSDE, Bao et al. 2023). A *clean* one (``noisy: false``) sees only z_0: the independent
"judge" of EDM's conditional benchmark. Targets are normalised by the training set's mean and
standard deviation; the loss is the L1 error on normalised targets (molecules lacking a label are
left out of its mean). Rank 0 of one process; writes ``OUT_DIR/predictor.pt`` and
``OUT_DIR/metrics.jsonl``, and beside them the training state ``OUT_DIR/predictor_state.pt``
(optimiser, counters, noise RNG) from which ``resume`` continues exactly where the last checkpoint
left off.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from moldiff import rng
from moldiff.config import PredictorConfig
from moldiff.data.batch import collate
from moldiff.data.elements import AtomVocabulary
from moldiff.data.molset import MolSet
from moldiff.diffusion.state import MolGraph, MolState
from moldiff.errors import MoldiffError
from moldiff.generator import build_schedule
from moldiff.nets.precision import resolve_precision, set_precision
from moldiff.guidance.condition import PropertyNorm
from moldiff.property_model import PREDICTOR, PropertyModel, build_predictor_net, encode_batch
from moldiff.train.checkpoint import load_checkpoint, save_checkpoint
from moldiff.train.data import BatchOrder, load_training_data

PREDICTOR_STATE = "moldiff-predictor-training-state"  # checkpoint kind of a resumable predictor run


def target_labels(data: MolSet, targets: list[str], log=print) -> dict[str, np.ndarray]:
    """Each target's value per molecule (M,): a property of the set, or an RDKit score of its SMILES."""
    from moldiff.chem.labels import SCORES

    out, scores = {}, [t for t in targets if t not in data.properties]
    for name in targets:
        if name in data.properties:
            out[name] = data.properties[name]
        elif name not in SCORES:
            have = ", ".join(sorted(data.properties)) or "none"
            raise MoldiffError(f"target {name!r} is neither a property of the data set ({have}) nor an RDKit "
                               f"score ({', '.join(SCORES)})")  # fmt: skip
    if scores:
        if data.smiles is None:
            raise MoldiffError(f"targets {', '.join(scores)} need the molecules' SMILES, which the data set lacks")
        from moldiff.chem.labels import cached_druglike_scores

        out.update(cached_druglike_scores(list(data.smiles), scores, progress=log))
    return out


class PredictorTrainer:
    def __init__(self, config: PredictorConfig, log=print, resume: bool = False) -> None:
        self.config, self.log = config, log
        tc = config.train
        if not config.targets:
            raise MoldiffError("a predictor needs at least one target")
        if tc.threads:
            torch.set_num_threads(tc.threads)
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(auto if tc.device == "auto" else tc.device)
        torch.manual_seed(tc.seed)
        self.train_set, self.valid_set = load_training_data(config.data)
        self.vocab = AtomVocabulary(tuple(config.data.elements))
        self.labels = target_labels(self.train_set, config.targets, log)
        self.valid_set = self.valid_set.subset(slice(0, min(tc.val_molecules, len(self.valid_set))))
        self.valid_labels = target_labels(self.valid_set, config.targets, log)
        self.norm = PropertyNorm.fit(self.labels, config.targets)
        self.net = build_predictor_net(config, len(config.targets)).to(self.device)
        self.precision = resolve_precision(tc.precision, self.device)  # recorded in every history row
        set_precision(self.net, self.precision)
        self.schedule = build_schedule(config.diffusion)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, amsgrad=True)
        self.order = BatchOrder(len(self.train_set), tc.batch_size, tc.seed)
        self.noise_gen = torch.Generator().manual_seed(tc.seed * 1000 + 1)
        self.step, self.epoch, self.cursor, self.history = 0, 0, 0, []
        self.out_dir = Path(config.out_dir)
        self.state_path = self.out_dir / "predictor_state.pt"
        if resume and self.state_path.exists():
            self._restore()

    def _restore(self) -> None:
        state = load_checkpoint(self.state_path, (PREDICTOR_STATE,))
        saved = {k: state["config"].get(k) for k in ("targets", "noisy", "model", "diffusion")}
        mine = {k: v for k, v in self.config.model_dump().items() if k in saved}
        if saved != mine:
            changed = ", ".join(k for k in saved if saved[k] != mine[k])
            raise MoldiffError(f"{self.state_path} was trained with another {changed}; use a new out_dir to start over")
        self.net.load_state_dict(state["weights"])
        self.opt.load_state_dict(state["optimizer"])
        self.noise_gen.set_state(state["noise_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.epoch, self.cursor, self.history = state["step"], state["epoch"], state["cursor"], state["history"]
        self.log(f"resumed from {self.state_path} at step {self.step}")

    def _targets(self, labels: dict[str, np.ndarray], index: np.ndarray) -> torch.Tensor:
        y = np.stack([labels[name][index] for name in self.config.targets], axis=1)
        return self.norm.normalize(torch.from_numpy(y).float()).to(self.device)

    def _noisy(self, z0: MolState, graph: MolGraph) -> tuple[MolState, torch.Tensor]:
        """(z_t, t): the diffusion's forward process at t ~ U(0, 1), or (z_0, 0) for a clean predictor."""
        b = graph.num_graphs
        if not self.config.noisy:
            return z0, torch.zeros(b, device=z0.device)
        t = rng.rand(b, generator=self.noise_gen, device=z0.device)
        eps = z0.randn_like(self.noise_gen)
        values = self.schedule(t)
        return values.alpha * z0 + values.sigma * eps, t

    def train_step(self) -> dict[str, float]:
        tc = self.config.train
        index = self.order.batch(self.epoch, self.cursor)
        z0, graph = encode_batch(collate(self.train_set, index, self.vocab).to(self.device), len(self.vocab),
                                 self.config.diffusion.type_scale)  # fmt: skip
        z_t, t = self._noisy(z0, graph)
        target = self._targets(self.labels, index)
        pred = self.net(z_t["coords"], z_t["types"], t, graph.batch, graph.ptr)
        known = torch.isfinite(target)
        loss = (pred - target.nan_to_num()).abs()[known].mean() if known.any() else pred.sum() * 0
        for group in self.opt.param_groups:
            group["lr"] = tc.lr * min(1.0, (self.step + 1) / 100)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), tc.grad_clip)
        if torch.isfinite(grad_norm):
            self.opt.step()
        self.step, self.cursor = self.step + 1, self.cursor + 1
        if self.cursor >= self.order.batches_per_epoch():
            self.epoch, self.cursor = self.epoch + 1, 0
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm)}

    def model(self) -> PropertyModel:
        return PropertyModel(self.net, self.schedule, self.vocab, self.config.diffusion.type_scale, self.norm,
                             self.config.noisy)  # fmt: skip

    def validation_mae(self) -> dict[str, float]:
        """MAE of each target on clean validation molecules, in the target's own unit."""
        self.net.eval()
        try:
            pred = self.model().predict(self.valid_set, device=self.device)
        finally:
            self.net.train()
        out = {}
        for name in self.config.targets:
            err = np.abs(pred[name] - self.valid_labels[name])
            out[f"val_mae_{name}"] = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
        return out

    def record(self, metrics: dict) -> None:
        row = {"step": self.step, "time": time.time(), "precision": self.precision, **metrics}
        self.history.append(row)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        self.log(f"step {self.step} " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    def save(self) -> Path:
        """The predictor (for guidance) and the training state (for ``resume``)."""
        path = self.out_dir / "predictor.pt"
        save_checkpoint(path, {"kind": PREDICTOR, "config": self.config.model_dump(), "weights": self.net.state_dict(),
                               "target_stats": self.norm.to_dict(), "step": self.step, "history": self.history})  # fmt: skip
        save_checkpoint(self.state_path, {"kind": PREDICTOR_STATE, "config": self.config.model_dump(),
                                          "weights": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                                          "noise_rng": self.noise_gen.get_state(), "torch_rng": torch.get_rng_state(),
                                          "step": self.step, "epoch": self.epoch, "cursor": self.cursor,
                                          "history": self.history})  # fmt: skip
        return path

    def run(self) -> dict:
        tc = self.config.train
        start, window = time.time(), []
        self.net.train()
        try:
            while self.step < tc.max_steps:
                window.append(self.train_step())
                if self.step % tc.log_every == 0:
                    self.record({k: float(np.mean([w[k] for w in window])) for k in window[0]})
                    window = []
                if self.step % tc.eval_every == 0:
                    self.record(self.validation_mae())
                if self.step % tc.checkpoint_every == 0:
                    self.save()
                if tc.max_minutes is not None and (time.time() - start) / 60 >= tc.max_minutes:
                    self.log(f"time budget of {tc.max_minutes} min reached at step {self.step}")
                    break
        except KeyboardInterrupt:
            self.log("interrupted: saving the predictor")
        final = self.validation_mae()
        self.record(final)
        self.save()
        return final


def train_predictor(config: PredictorConfig, log=print, resume: bool = False) -> dict:
    """Train a predictor from its config (``resume``: continue from OUT_DIR/predictor_state.pt if
    it exists); returns the final validation MAEs."""
    return PredictorTrainer(config, log, resume).run()


__all__ = ["PREDICTOR_STATE", "PredictorTrainer", "target_labels", "train_predictor"]
