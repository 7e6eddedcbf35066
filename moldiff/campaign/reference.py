"""The reference set a campaign scores against (novelty, nearest neighbours, FCD, the report's
distributions): by default the training set of its model.

``scoring.reference`` is ``training`` (QM9's EDM training split for a model trained on ``qm9``, the
MOSES subset of a model trained on ``moses``, the ``.npz`` a model was trained on when that file is
here), ``moses`` (the MOSES train SMILES), or a file: SMILES (``.smi``, ``.txt``, ``.csv``), a
molecule set (``.npz`` with SMILES) or an SDF.
"""

from __future__ import annotations

from pathlib import Path

from moldiff.errors import MoldiffError


def reference_smiles(spec: str, model_config=None) -> tuple[str, list[str]]:
    """(name, SMILES) of a reference given by ``scoring.reference`` (see the module docstring)."""
    if spec == "training":
        if model_config is None:
            raise MoldiffError("scoring.reference 'training' needs the model's config")
        return _training(model_config)
    if spec == "moses":
        from moldiff.data.moses import moses_smiles

        return "MOSES train", moses_smiles("train")
    return _from_file(Path(spec))


def _training(config) -> tuple[str, list[str]]:
    data = config.data
    if data.dataset == "qm9":
        from moldiff.data.qm9 import load_qm9

        return "QM9 train (EDM split)", [str(s) for s in load_qm9("train").smiles]
    if data.dataset == "moses":
        from moldiff.data.moses import subset_smiles

        return f"MOSES train subset ({data.subset or 'all'})", subset_smiles(data.subset)
    path = Path(data.dataset)
    if path.is_file():
        name, smiles = _from_file(path)
        return f"training set {path.name}", smiles
    raise MoldiffError(f"the model's training set {data.dataset} is not on this machine; set scoring.reference "
                       "to 'moses' or to a SMILES, SDF or .npz file")  # fmt: skip


def _from_file(path: Path) -> tuple[str, list[str]]:
    if not path.is_file():
        raise MoldiffError(f"scoring.reference: no such file {path} (or use 'training' or 'moses')")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        from moldiff.data.molset import MolSet

        molset = MolSet.load(path)
        if molset.smiles is None:
            raise MoldiffError(f"scoring.reference: {path} holds no SMILES")
        return path.name, [str(s) for s in molset.smiles]
    if suffix in (".sdf", ".sd"):
        from moldiff.chem.io import read_sdf
        from moldiff.chem.smiles import sdf_smiles

        molset, _ = read_sdf(path)
        return path.name, [s for s, _ in sdf_smiles(path, molset.ids) if s]
    if suffix in (".smi", ".smiles", ".txt", ".csv"):
        from moldiff.chem.reference import read_reference_smiles

        return path.name, sorted(read_reference_smiles(path))
    raise MoldiffError(f"scoring.reference: cannot read {path.name} (expected .smi, .txt, .csv, .npz or .sdf)")


def load_reference(spec: str, model_config=None, max_neighbours: int | None = None):
    """The :class:`moldiff.chem.reference_set.ReferenceSet` for ``scoring.reference``."""
    from moldiff.chem.reference_set import MAX_NEIGHBOURS, ReferenceSet

    name, smiles = reference_smiles(spec, model_config)
    if not smiles:
        raise MoldiffError(f"scoring.reference {spec!r} holds no readable SMILES")
    return ReferenceSet.from_smiles(smiles, name, max_neighbours=max_neighbours or MAX_NEIGHBOURS)
