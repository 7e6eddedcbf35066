"""The training data as graphs: how many molecules get the bonds and charges of their SMILES placed on
their coordinates, and what explicit hydrogens cost in atom pairs.

    python bench/bench_data_graphs.py [--moses 300]    # about four minutes on one core

- QM9: every molecule's DFT coordinates are read for connectivity (covalent radii) and matched to
  its SMILES graph with explicit hydrogens (moldiff.chem.graphs), per EDM split.
- MOSES: the first ``--moses`` molecules of the drug-like training subset are embedded as
  ``moldiff data prepare moses`` embeds them (ETKDG + MMFF) and matched the same way.
- Pairs: the unordered atom pairs i < j per molecule (what a pair channel carries), with explicit
  hydrogens and with heavy atoms only, for QM9's training split and 20,000 MOSES molecules.

Writes bench/results/data_graphs.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from moldiff.chem.graphs import load_qm9_graphs, with_graphs
from moldiff.data.molset import MolSet
from moldiff.data.qm9 import SPLIT_SIZES, load_qm9
from moldiff.paths import atomic_write_text

OUT = Path(__file__).parent / "results" / "data_graphs.json"


def charged(molset: MolSet) -> int:
    owner = np.repeat(np.arange(len(molset)), molset.n_atoms)
    return int(len(np.unique(owner[molset.charges != 0])))


def pair_stats(atoms: np.ndarray) -> dict:
    pairs = atoms * (atoms - 1) / 2
    return {"mean_atoms": round(float(atoms.mean()), 2), "mean_pairs": round(float(pairs.mean()), 1),
            "max_atoms": int(atoms.max()), "max_pairs": int(pairs.max())}  # fmt: skip


def qm9_section() -> dict:
    start = time.time()
    graphs, failed = load_qm9_graphs()
    splits = {}
    for split in SPLIT_SIZES:
        part, part_failed = load_qm9_graphs(split)
        splits[split] = {"molecules": SPLIT_SIZES[split], "placed": len(part), "not_placed": len(part_failed),
                         "with_formal_charges": charged(part)}  # fmt: skip
    return {
        "seconds": round(time.time() - start, 1),
        "molecules": len(graphs) + len(failed),
        "placed": len(graphs),
        "not_placed": len(failed),
        "with_formal_charges": charged(graphs),
        "reasons": dict(Counter(reason.split(":")[0] for reason in failed.values()).most_common()),
        "examples": {str(k): v for k, v in list(failed.items())[:10]},
        "splits": splits,
    }


def moses_section(n: int) -> dict:
    from moldiff.chem.conformers import Conformer, smiles_to_3d
    from moldiff.data.moses import subset_smiles

    start = time.time()
    embedded = [smiles_to_3d(s) for s in subset_smiles(20_000)[:n]]
    ok = [c for c in embedded if isinstance(c, Conformer)]
    molset = MolSet(np.concatenate([c.atomic_numbers for c in ok]), np.concatenate([c.positions for c in ok]),
                    np.concatenate([[0], np.cumsum([len(c.atomic_numbers) for c in ok])]),
                    charges=np.concatenate([c.charges for c in ok]), smiles=[c.smiles for c in ok])  # fmt: skip
    graphs, failed = with_graphs(molset)
    placed = molset.subset([i for i in range(len(molset)) if i not in failed])
    return {
        "seconds": round(time.time() - start, 1),
        "molecules": n,
        "embedded": len(ok),
        "placed": len(graphs),
        "not_placed": len(failed),
        "with_formal_charges": charged(graphs),
        "reasons": dict(Counter(reason.split(":")[0] for reason in failed.values()).most_common()),
        # the conformer keeps RDKit's charges in its own atom order: compare as multisets per molecule
        "charges_as_the_conformers": sum(_same_charges(graphs, placed, k) for k in range(len(graphs))),
    }


def _same_charges(a: MolSet, b: MolSet, k: int) -> bool:
    return sorted(a.charges[a.ptr[k] : a.ptr[k + 1]].tolist()) == sorted(b.charges[b.ptr[k] : b.ptr[k + 1]].tolist())


def pairs_section() -> dict:
    from rdkit import Chem

    from moldiff.data.moses import subset_smiles

    qm9 = load_qm9("train")
    heavy_qm9 = qm9.without_hydrogens().n_atoms
    with_h, heavy = [], []
    for smiles in subset_smiles(20_000):
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            heavy.append(mol.GetNumAtoms())
            with_h.append(Chem.AddHs(mol).GetNumAtoms())
    return {
        "qm9_train": {"explicit_h": pair_stats(qm9.n_atoms), "heavy_atoms": pair_stats(heavy_qm9)},
        "moses_20k": {"explicit_h": pair_stats(np.array(with_h)), "heavy_atoms": pair_stats(np.array(heavy))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moses", type=int, default=300, help="MOSES molecules to embed and match")
    args = parser.parse_args()
    result = {
        "protocol": "bonds and charges of the training sets' SMILES placed on their coordinates; pair counts",
        "command": "python bench/bench_data_graphs.py" + (f" --moses {args.moses}" if args.moses != 300 else ""),
        "qm9": qm9_section(),
        "moses": moses_section(args.moses),
        "pairs": pairs_section(),
    }
    atomic_write_text(OUT, json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "qm9"} | {"qm9_placed": result["qm9"]["placed"]},
                     indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
