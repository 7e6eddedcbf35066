"""The training loop: one function, ``train(config)``, for a single process or one rank of a
``torchrun`` job. Rank 0 alone writes checkpoints, metrics and tracking.

Resuming (``resume=True``) restores model, EMA, optimiser, step, epoch position and the noise
generator, so a killed run continues exactly where its last checkpoint left it. Where OUT_DIR holds
no training state, a config's ``train.continues`` names a model file (a built-in model) to continue
from instead: its EMA weights and recorded position, with fresh optimizer moments
(``moldiff.train.continuation``).
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from moldiff.config import RunConfig
from moldiff.data.batch import collate
from moldiff.diffusion.discrete import class_marginals
from moldiff.diffusion.known import covalent_radii, open_valences, random_fragments
from moldiff.diffusion.losses import training_loss
from moldiff.generator import MoleculeGenerator, build_network, graph_class_counts
from moldiff.guidance.condition import PropertyNorm, drop_conditions, null_condition
from moldiff.nets.precision import resolve_precision, set_precision
from moldiff.train import distributed as dist_utils
from moldiff.train.checkpoint import MODEL, TRAINING_STATE, load_checkpoint, save_checkpoint
from moldiff.train.continuation import POSITION, check_continuable
from moldiff.train.data import BatchOrder, load_training_data
from moldiff.train.ema import EMA
from moldiff.train.warm_start import remap_elements, warm_start


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, cfg) -> float:
    return cfg.lr * min(1.0, (step + 1) / max(cfg.warmup_steps, 1))


class Trainer:
    def __init__(self, config: RunConfig, *, resume: bool = False, tracker=None, init: str | None = None,
                 log=print) -> None:  # fmt: skip
        self.config, self.log, self.tracker = config, log, tracker
        self.rank, self.world = dist_utils.rank(), dist_utils.world_size()
        tc = config.train
        if tc.threads:
            torch.set_num_threads(tc.threads)
        self.device = dist_utils.device_for_rank(pick_device(tc.device))
        self.out_dir = Path(config.out_dir)
        self.state_path = self.out_dir / "last.pt"
        self.model_path = self.out_dir / "model.pt"

        torch.manual_seed(tc.seed)
        self.train_set, self.valid_set = load_training_data(config.data)
        self.hist = self.train_set.atom_count_histogram()
        d = config.diffusion
        if d.discrete == "categorical" and d.discrete_prior == "marginal" and not d.discrete_marginals:
            # the prior of every class path, kept in the config and so in every model file
            counts = graph_class_counts(self.train_set, config.data.elements, config.data.charges)
            d.discrete_marginals = class_marginals(counts)
        # conditional models see normalised properties plus a "present" flag (classifier-free guidance)
        props = config.data.properties
        self.cond_norm = PropertyNorm.fit(self.train_set.properties, props) if props else None
        self.net = self.build_network(config).to(self.device)
        # the EMA copy inherits it; "auto" resolves per machine, so every history row records it
        self.precision = resolve_precision(tc.precision, self.device)
        set_precision(self.net, self.precision)
        self.ema = EMA(self.net, tc.ema_decay)
        self.ddp = dist_utils.wrap(self.net, self.device)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, amsgrad=True)
        self.gen = MoleculeGenerator.from_config(config, self.ddp, self.hist)
        self.ema_gen = MoleculeGenerator.from_config(config, self.ema.model, self.hist)
        self.order = BatchOrder(len(self.train_set), tc.batch_size, tc.seed, self.rank, self.world)
        self.noise_gen = torch.Generator(device="cpu").manual_seed(tc.seed * 1000 + self.rank)
        vocab = self.gen.vocab  # what a random known fragment needs (model.known_atoms)
        self.radii = covalent_radii(vocab.atomic_numbers)
        self.is_hydrogen = torch.tensor([s == "H" for s in vocab.symbols])
        self.step, self.epoch, self.cursor, self.history = 0, 0, 0, []
        self.cpu_seconds = 0.0  # process CPU time spent training, summed over resumed runs
        self._cpu_start = time.process_time()
        if resume and self.state_path.exists():
            self._restore(load_checkpoint(self.state_path, (TRAINING_STATE,)))
            self._ignored_init(init)
        elif resume and tc.continues:
            self._continue(tc.continues)
            self._ignored_init(init)
        else:
            if resume:
                log(f"no training state in {self.out_dir} and no train.continues: starting a new training")
            if init is not None:
                self._initialise(init)

    def _initialise(self, init: str) -> None:
        """Start from another model's weights (``--init``), widening or remapping what differs."""
        payload = load_checkpoint(init)
        state = payload["ema"] if "ema" in payload else payload["model"]
        source_elements = (payload.get("config") or {}).get("data", {}).get("elements")
        if source_elements and list(source_elements) != list(self.config.data.elements):
            state = remap_elements(state, source_elements, self.config.data.elements)
            self.log(f"initialised from {init}: element vocabulary {' '.join(source_elements)} -> "
                     f"{' '.join(self.config.data.elements)} (new elements start at zero)")  # fmt: skip
        widened = warm_start(self.net, state, str(init))
        self.ema.load_state_dict(self.net.state_dict())
        if widened:
            self.log(f"initialised from {init}; new inputs (condition, known-atom flag) start at zero in "
                     f"{', '.join(widened)}")  # fmt: skip

    # ----------------------------------------------------------------- hooks
    def build_network(self, config: RunConfig) -> torch.nn.Module:
        """The network to train (subclasses train other models on the same data and loop)."""
        return build_network(config)

    def compute_loss(self, gen: MoleculeGenerator, z0, graph, generator) -> dict:
        """{"loss", ...} of ``gen``'s network on clean states ``z0``."""
        return training_loss(gen.denoiser, z0, graph, self.config.diffusion, generator=generator)

    def after_update(self, generator) -> dict:
        """Work of a training step after the optimizer step (not of the validation loss, which also
        calls ``compute_loss``); returns extra metrics. Subclasses train auxiliary models here."""
        return {}

    # ----------------------------------------------------------------- state
    def _payload(self) -> dict:
        return {
            "kind": TRAINING_STATE,
            "config": self.config.model_dump(),
            "model": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step, "atom_count_hist": {int(k): int(v) for k, v in self.hist.items()},
            "history": self.history,
        } | self._position() | self._stats_entry()  # fmt: skip

    def _position(self) -> dict:
        """Where the training stands besides its step: epoch, batch cursor, noise generator, CPU time."""
        return {"epoch": self.epoch, "cursor": self.cursor, "noise_rng": self.noise_gen.get_state(),
                "cpu_seconds": self._cpu_now()}  # fmt: skip

    def _model_file(self) -> dict:
        """The model file: EMA weights, what sampling needs, and the position a continuation needs."""
        return model_payload(self.config, self.ema.state_dict(), self.hist, self.step, self.history,
                             position=self._position()) | self._stats_entry()  # fmt: skip

    def _stats_entry(self) -> dict:
        return {} if self.cond_norm is None else {"property_stats": self.cond_norm.to_dict()}

    def condition(self, graph, drop_prob: float, property_drop_prob: float = 0.0):
        """The graph with its raw properties replaced by the encoded condition, each molecule's
        dropped with ``drop_prob`` and each property of a kept one with ``property_drop_prob``
        (drawn from the noise generator, so resuming stays exact)."""
        if self.cond_norm is None:
            return graph
        keep = drop_conditions(graph.num_graphs, drop_prob, self.noise_gen, properties=len(self.cond_norm.names),
                               property_prob=property_drop_prob)  # fmt: skip
        return replace(graph, cond=self.cond_norm.encode(graph.cond, keep))

    def _restore(self, p: dict) -> None:
        self.net.load_state_dict(p["model"])
        self.ema.load_state_dict(p["ema"])
        self.opt.load_state_dict(p["optimizer"])
        self._set_position(p)
        self.log(f"resumed from {self.state_path} at step {self.step}")
        self._precision_note()

    def _continue(self, source: str) -> None:
        """Continue the training a model file recorded (``train.continues``): its EMA weights become
        both the trained and the averaged weights; the optimizer starts afresh."""
        from moldiff.models import resolve_model

        p = load_checkpoint(resolve_model(source), (MODEL,))
        check_continuable(p, self.config, source)
        self.net.load_state_dict(p["ema"])
        self.ema.load_state_dict(p["ema"])
        self._set_position(p)
        epochs = self.epoch + self.cursor / self.order.batches_per_epoch()
        self.log(f"no training state in {self.out_dir}: continuing {source} from step {self.step} "
                 f"(epoch {epochs:.2f}); the model file keeps EMA weights only, so the optimizer moments restart")
        self._precision_note()

    def _ignored_init(self, init: str | None) -> None:
        if init is not None:
            self.log(f"--init {init} ignored: the run continues its own training")

    def _set_position(self, p: dict) -> None:
        """Step, data order, noise generator, learning curve and CPU time of a state or model file."""
        self.step, self.epoch, self.cursor = p["step"], p["epoch"], p["cursor"]
        saved_batch = p.get("config", {}).get("train", {}).get("batch_size", self.config.train.batch_size)
        if saved_batch != self.config.train.batch_size:  # keep the place in the epoch, counted in molecules
            self.cursor = self.cursor * saved_batch // self.config.train.batch_size
        self.noise_gen.set_state(p["noise_rng"])
        self.history = list(p.get("history", []))
        self.cpu_seconds = float(p.get("cpu_seconds", 0.0))  # absent in states written before it was kept

    def _precision_note(self) -> None:
        before = self.history[-1].get("precision", "fp32") if self.history else self.precision
        if before != self.precision:  # e.g. train.precision: auto on a machine of another kind
            self.log(f"precision changes from {before} to {self.precision} (train.precision: {self.config.train.precision})")

    def save(self) -> None:
        if self.rank != 0:
            return
        save_checkpoint(self.state_path, self._payload())
        save_checkpoint(self.model_path, self._model_file())

    def snapshot_due(self) -> bool:
        """Whether training has crossed a multiple of ``train.snapshot_every_cpu_minutes`` CPU minutes
        since the last snapshot (or since this run started)."""
        every = self.config.train.snapshot_every_cpu_minutes
        return every is not None and self._cpu_now() // (60 * every) > self._last_snapshot // (60 * every)

    def snapshot(self) -> None:
        """The model file as it is now (it records its step and CPU seconds), kept as
        ``snapshots/model_step<step>.pt`` for learning curves."""
        self._last_snapshot = self._cpu_now()
        if self.rank == 0:
            save_checkpoint(self.out_dir / "snapshots" / f"model_step{self.step:07d}.pt", self._model_file())

    # ------------------------------------------------------------------ loop
    def train_step(self) -> dict[str, float]:
        tc = self.config.train
        index = self.order.batch(self.epoch, self.cursor)
        batch = collate(self.train_set, index, self.gen.vocab, tuple(self.config.data.properties)).to(self.device)
        z0, graph = self.gen.encode(batch)
        graph = self.condition(graph, tc.cond_drop_prob, tc.cond_property_drop_prob)
        if self.config.model.known_atoms:
            known = random_fragments(z0["coords"], batch.atom_type, graph, self.radii, self.is_hydrogen,
                                     tc.fragment_prob, self.noise_gen)  # fmt: skip
            graph = replace(graph, known=known)
            if self.config.model.known_valence:
                graph = replace(graph, open_valence=open_valences(z0["coords"], batch.atom_type, graph, self.radii, known))
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step, tc)
        losses = self.compute_loss(self.gen, z0, graph, self.noise_gen)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), tc.grad_clip)
        if torch.isfinite(grad_norm):
            self.opt.step()
            self.ema.update(self.net, self.step)
        losses |= self.after_update(self.noise_gen)
        self.step += 1
        self.cursor += 1
        if self.cursor >= self.order.batches_per_epoch():
            self.epoch, self.cursor = self.epoch + 1, 0
        return {k: float(v.detach()) for k, v in losses.items()} | {"grad_norm": float(grad_norm)}

    def _cpu_now(self) -> float:
        """CPU seconds of all training so far: earlier runs plus this process since it started."""
        return self.cpu_seconds + time.process_time() - self._cpu_start

    def run(self) -> dict:
        tc = self.config.train
        start, stop_flag = time.time(), {"stop": False}
        previous = signal.signal(signal.SIGTERM, lambda *_: stop_flag.update(stop=True))
        window: list[dict] = []
        last_log = time.time()
        self._last_snapshot = self._cpu_now()
        if self.precision != "fp32":
            self.log(f"matrix products in {self.precision} (train.precision: {tc.precision})")
        try:
            while self.step < tc.max_steps and not stop_flag["stop"]:
                window.append(self.train_step())
                if self.step % tc.log_every == 0:
                    self._log_window(window, time.time() - last_log)
                    window, last_log = [], time.time()
                if self.step % tc.eval_every == 0:
                    self.evaluate()
                if self.step % tc.checkpoint_every == 0:
                    self.save()
                if self.snapshot_due():
                    self.snapshot()
                if tc.max_minutes is not None and (time.time() - start) / 60 >= tc.max_minutes:
                    self.log(f"time budget of {tc.max_minutes} min reached at step {self.step}")
                    break
        except KeyboardInterrupt:
            self.log("interrupted: saving a checkpoint")
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.save()
        return self.history[-1] if self.history else {}

    def _log_window(self, window: list[dict], seconds: float) -> None:
        mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        mols = len(window) * self.config.train.batch_size * self.world
        mean["mol_per_s"] = mols / max(seconds, 1e-9)
        mean["epoch"] = self.epoch + self.cursor / self.order.batches_per_epoch()  # right across batch-size changes
        mean["cpu_seconds"] = self._cpu_now()
        mean["lr"] = self.opt.param_groups[0]["lr"]  # a resume may change train.lr: the history says when
        self.record(mean, quiet=False)

    def record(self, metrics: dict, quiet: bool = True) -> None:
        if self.rank != 0:
            return
        row = {"step": self.step, "time": time.time(), "device": self.device.type, "precision": self.precision,
               **metrics}  # fmt: skip
        self.history.append(row)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.tracker is not None:
            self.tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, self.step)
        if not quiet or any(k.startswith(("val_", "sample_")) for k in metrics):
            text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            self.log(f"step {self.step} {text}")

    @torch.no_grad()
    def evaluate(self) -> None:
        if self.rank != 0:
            return
        tc = self.config.train
        metrics = {"val_loss": self.validation_loss()}
        if tc.eval_samples > 0:
            try:
                metrics.update({f"sample_{k}": v for k, v in self.sample_quality().items()})
            except Exception as exc:  # a failed evaluation must never cost the training run
                self.log(f"sample evaluation failed at step {self.step}: {type(exc).__name__}: {exc}")
        self.record(metrics)

    def validation_loss(self) -> float:
        tc = self.config.train
        n = min(tc.val_molecules, len(self.valid_set))
        gen = torch.Generator().manual_seed(12345)  # the same noise at every evaluation
        total, count = 0.0, 0
        for start in range(0, n, tc.batch_size):
            index = np.arange(start, min(start + tc.batch_size, n))
            batch = collate(self.valid_set, index, self.gen.vocab, tuple(self.config.data.properties)).to(self.device)
            z0, graph = self.ema_gen.encode(batch)
            if self.cond_norm is not None:
                graph = replace(graph, cond=self.cond_norm.encode(graph.cond))
            loss = self.compute_loss(self.ema_gen, z0, graph, gen)["loss"]
            total, count = total + float(loss) * len(index), count + len(index)
        return total / max(count, 1)

    def sample_quality(self) -> dict:
        from moldiff.chem.evaluate import evaluate
        from moldiff.solvers import sample_ddpm, uniform_times

        tc = self.config.train
        rng = np.random.default_rng(0)
        counts = self.ema_gen.sample_atom_counts(tc.eval_samples, rng).tolist()
        cond = None  # conditional models are checked unconditionally (the null condition)
        if self.cond_norm is not None:
            cond = null_condition(tc.eval_samples, len(self.cond_norm.names)).to(self.device)
        mols = self.ema_gen.sample(list(range(tc.eval_samples)), counts, solver=sample_ddpm,
                                   times=uniform_times(tc.eval_steps), cond=cond, device=self.device)  # fmt: skip
        summary, _ = evaluate(mols, reference_smiles=None)
        return {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and k != "n"}


def model_payload(config: RunConfig, weights: dict, hist: dict, step: int, history: list, *,
                  position: dict | None = None) -> dict:  # fmt: skip
    """What a model file holds: the EMA weights and what's needed to use them, and with ``position``
    (epoch, cursor, noise_rng, cpu_seconds) what's needed to continue their training."""
    extra = {key: position[key] for key in POSITION} if position is not None else {}
    return {"kind": MODEL, "config": config.model_dump(), "ema": weights, "step": step,
            "atom_count_hist": {int(k): int(v) for k, v in hist.items()}, "history": history, **extra}  # fmt: skip


def train(config: RunConfig, *, resume: bool = False, tracker=None, init: str | None = None, log=print) -> dict:
    dist_utils.setup()
    try:
        trainer = Trainer(config, resume=resume, tracker=tracker, init=init, log=log)
        return trainer.run()
    finally:
        dist_utils.teardown()


__all__ = ["Trainer", "train", "model_payload"]
