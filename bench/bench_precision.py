"""bfloat16 matrix products (``--precision bf16``, ``moldiff.nets.precision``) against float32:
network speed and sample quality, both taken in this one run on this one machine.

    python bench/bench_precision.py [--n 500] [--threads 2]    # writes bench/results/precision.json

1. Network speed, fp32 and bf16 timed in turn batch by batch (so the ratio holds on a noisy
   machine): a training step (loss, backward, AdamW) and one denoiser evaluation, on the
   built-in models' own networks and batch shapes: ``qm9-edm`` with 64 QM9 training molecules, and
   ``drugs`` with 32 molecules of its training sizes (random coordinates at the data's
   density: the cost depends only on the shapes). Median ratio of the pairs.
2. Sample quality: ``n`` molecules from the built-in ``qm9-edm`` model with the default sampler,
   the same seeds and sizes in both precisions, scored with the EDM protocol, and the wall time
   of each (fp32 first, then bf16).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import sample_and_score

from moldiff import defaults
from moldiff.data.batch import MolBatch, collate
from moldiff.data.qm9 import load_qm9
from moldiff.diffusion.losses import simple_loss
from moldiff.models import load_generator
from moldiff.nets.precision import bf16_native, set_precision

PRECISIONS = ("fp32", "bf16")
WARMUP, TIMED = 2, 10


def drug_batch(gen, size: int, rng: np.random.Generator) -> MolBatch:
    """``size`` molecules of the model's training sizes: random types, coordinates in a ball of
    the density of drug-like molecules (about 0.1 atoms per Å³ with hydrogens)."""
    sizes, counts = zip(*sorted(gen.atom_count_hist.items()))
    n_atoms = rng.choice(sizes, size=size, p=np.array(counts) / sum(counts))
    ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(n_atoms)]))
    n = int(ptr[-1])
    radius = (3 * n_atoms / (4 * np.pi * 0.1)) ** (1 / 3)
    pos = np.concatenate([rng.normal(size=(k, 3)) * r / 2 for k, r in zip(n_atoms, radius)])
    return MolBatch(pos=torch.from_numpy(pos), atom_type=torch.from_numpy(rng.integers(0, len(gen.vocab), n)),
                    charge=torch.zeros(n, dtype=torch.long), batch=torch.repeat_interleave(torch.arange(size), torch.from_numpy(n_atoms)),
                    ptr=ptr, props=torch.zeros(size, 0))  # fmt: skip


def network_speed(name: str, gen, batches: list[MolBatch]) -> dict:
    """Seconds per training step and per evaluation of ``gen``'s network in each precision, timed in
    turn (its weights take AdamW steps: load a fresh copy for anything after this)."""
    net = gen.denoiser.net
    opt = torch.optim.AdamW(net.parameters(), lr=1e-6, amsgrad=True)
    times = {(p, what): [] for p in PRECISIONS for what in ("train", "eval")}
    for i, batch in enumerate(batches):
        z0, graph = gen.encode(batch)
        for precision in PRECISIONS:
            set_precision(net, precision)
            net.train()
            start = time.perf_counter()
            loss = simple_loss(gen.denoiser, z0, graph)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            train = time.perf_counter() - start
            net.eval()
            with torch.no_grad():
                t = torch.rand(graph.num_graphs)
                start = time.perf_counter()
                gen.denoiser.eps(z0 + 0.1 * torch.randn_like(z0), t, graph)
                evaluation = time.perf_counter() - start
            if i >= WARMUP:
                times[precision, "train"].append(train)
                times[precision, "eval"].append(evaluation)
    row = {"model": name, "molecules": int(batches[0].num_graphs), "atoms_per_batch": int(batches[0].ptr[-1])}
    for what in ("train", "eval"):
        for p in PRECISIONS:
            row[f"{what}_seconds_{p}"] = statistics.median(times[p, what])
        pairs = [a / b for a, b in zip(times["fp32", what], times["bf16", what])]
        row[f"{what}_speedup"] = statistics.median(pairs)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500, help="molecules per precision for the quality check")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "precision.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"bfloat16 native on this CPU: {bf16_native('cpu')}")

    rng = np.random.default_rng(0)
    qm9 = load_qm9("train")
    qm9_gen, _, _ = load_generator("qm9-edm")
    drugs_gen, _, _ = load_generator("drugs")
    speed = [
        network_speed("qm9-edm", qm9_gen, [collate(qm9, rng.choice(len(qm9), 64, replace=False), qm9_gen.vocab)
                                       for _ in range(WARMUP + TIMED)]),  # fmt: skip
        network_speed("drugs", drugs_gen, [drug_batch(drugs_gen, 32, rng) for _ in range(WARMUP + TIMED)]),
    ]
    qm9_gen, _, _ = load_generator("qm9-edm")  # untouched weights for the quality check
    for r in speed:
        print(f"{r['model']}: training step {r['train_seconds_fp32']:.3f} s -> {r['train_seconds_bf16']:.3f} s "
              f"({r['train_speedup']:.2f}x), evaluation {r['eval_seconds_fp32']:.3f} s -> "
              f"{r['eval_seconds_bf16']:.3f} s ({r['eval_speedup']:.2f}x)")  # fmt: skip

    quality = []
    for precision in PRECISIONS:
        set_precision(qm9_gen.denoiser.net, precision)
        row = sample_and_score(qm9_gen, defaults.SOLVER, defaults.STEPS, n=args.n, seed=0, batch_size=100,
                               device="cpu")  # fmt: skip
        quality.append({"precision": precision, **row})
        print(f"qm9-edm {precision}: atom stab {row['atom_stability']:.3f}, mol stab {row['mol_stability']:.3f}, "
              f"valid {row['validity']:.3f}, valid & one piece {row['valid_connected']:.3f}, "
              f"{row['seconds_per_molecule']:.3f} s/molecule")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"threads": args.threads, "bf16_native": bf16_native("cpu"), "speed": speed, "quality": quality}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
