"""The chemistry room: the only package that imports RDKit.

``bonds`` (the EDM bond rule, pure numpy), ``rdmol`` (RDKit molecules and SMILES), ``io`` (SDF and
XYZ files), ``evaluate`` (the EDM metrics), ``graph_eval`` (molecules judged by the graph they are
written with) and ``reference`` (novelty reference SMILES). Names are
re-exported lazily so that importing :mod:`moldiff.chem.bonds` does not load RDKit.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "edm_bond_orders": "bonds",
    "stability": "bonds",
    "evaluate": "evaluate",
    "evaluate_graphs": "graph_eval",
    "qm9_train_reference_smiles": "reference",
    "read_reference_smiles": "reference",
    "read_molecules": "io",
    "read_sdf": "io",
    "read_xyz": "io",
    "write_sdf": "io",
    "write_xyz": "io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"moldiff.chem.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'moldiff.chem' has no attribute {name!r}")
