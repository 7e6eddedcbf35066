"""Per-molecule descriptors medicinal chemists use, as a name -> function table.

Every function takes a sanitized heavy-atom RDKit molecule (hydrogens folded in) and returns a
number (or, for ``scaffold``, a SMILES string). The table is the single list of what scoring
computes, so a new descriptor is one line here.

| name                  | what                                              | source                          |
|-----------------------|---------------------------------------------------|---------------------------------|
| qed                   | quantitative estimate of drug-likeness, [0, 1]    | Bickerton et al. 2012 (RDKit)   |
| sa                    | synthetic accessibility, 1 (easy) .. 10 (hard)    | Ertl & Schuffenhauer 2009       |
| logp                  | Crippen logP                                      | Wildman & Crippen 1999          |
| mw                    | average molecular weight, Da                      |                                 |
| tpsa                  | topological polar surface area, Å²                | Ertl et al. 2000                |
| hbd, hba              | Lipinski H-bond donors (NH + OH) / acceptors (N + O)| Lipinski et al. 1997          |
| rotatable_bonds       | rotatable bonds (RDKit's strict definition)       |                                 |
| heavy_atoms, rings    | counts                                            |                                 |
| lipinski_violations   | how many of MW > 500, logP > 5, HBD > 5, HBA > 10 |                                 |
| scaffold              | Bemis–Murcko scaffold SMILES ("" for acyclic)     | Bemis & Murcko 1996             |
"""

from __future__ import annotations

from collections.abc import Callable

from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors
from rdkit.Chem.Scaffolds import MurckoScaffold


def _sa(mol: Chem.Mol) -> float:
    from rdkit.Contrib.SA_Score import sascorer  # loads its fragment table on first use (~0.3 s)

    return float(sascorer.calculateScore(mol))


def lipinski_violations(mol: Chem.Mol) -> int:
    """Rule-of-five violations: MW > 500, logP > 5, H-bond donors > 5, acceptors > 10."""
    return int(Descriptors.MolWt(mol) > 500) + int(Crippen.MolLogP(mol) > 5) + \
        int(rdMolDescriptors.CalcNumLipinskiHBD(mol) > 5) + int(rdMolDescriptors.CalcNumLipinskiHBA(mol) > 10)


def murcko_scaffold(mol: Chem.Mol) -> str:
    """Canonical SMILES of the Bemis–Murcko scaffold (ring systems and linkers); "" when acyclic."""
    scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    return Chem.MolToSmiles(scaffold) if scaffold.GetNumAtoms() else ""


DESCRIPTORS: dict[str, Callable[[Chem.Mol], float | int | str]] = {
    "qed": lambda m: float(QED.qed(m)),
    "sa": _sa,
    "logp": lambda m: float(Crippen.MolLogP(m)),
    "mw": lambda m: float(Descriptors.MolWt(m)),
    "tpsa": lambda m: float(rdMolDescriptors.CalcTPSA(m)),
    "hbd": lambda m: int(rdMolDescriptors.CalcNumLipinskiHBD(m)),
    "hba": lambda m: int(rdMolDescriptors.CalcNumLipinskiHBA(m)),
    "rotatable_bonds": lambda m: int(rdMolDescriptors.CalcNumRotatableBonds(m)),
    "heavy_atoms": lambda m: int(m.GetNumHeavyAtoms()),
    "rings": lambda m: int(rdMolDescriptors.CalcNumRings(m)),
    "lipinski_violations": lipinski_violations,
    "scaffold": murcko_scaffold,
}

NUMERIC = tuple(name for name in DESCRIPTORS if name != "scaffold")


def describe(mol: Chem.Mol, names: tuple[str, ...] | None = None) -> dict[str, float | int | str]:
    """``{name: value}`` of the descriptors ``names`` (default: all) of one heavy-atom molecule."""
    return {name: DESCRIPTORS[name](mol) for name in (names or tuple(DESCRIPTORS))}
