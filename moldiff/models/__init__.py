"""Built-in models shipped inside the package, selectable by name, and loading any model file."""

from __future__ import annotations

from pathlib import Path

from moldiff.errors import MoldiffError

MODELS_DIR = Path(__file__).parent
# Generative models; each FILE.pt has its card FILE.md beside it. A plain name (qm9, drugs) is the
# best model of its data; NAME-edm is the coordinate-only model of the same data (atoms and types,
# bonds read from distances afterwards), kept selectable when a graph model takes the plain name.
# qm9: a graph model of QM9's heavy atoms, charges and bonds, hydrogens added by RDKit (moldiff/configs/qm9_graph_heavy.yaml)
# qm9-edm: coordinate-only, QM9 with explicit hydrogens (elements H C N O F; moldiff/configs/qm9_builtin.yaml)
# qm9-fast: a flow map distilled from qm9-edm (few-step sampling; moldiff/configs/flowmap_qm9.yaml)
# qm9-cond: qm9-edm fine-tuned on half of QM9's training split to take targets of six properties (--target)
# qm9-scaffold: qm9-edm fine-tuned to take a scaffold and its open valences as input (moldiff/configs/qm9_valence.yaml)
# drugs: coordinate-only, drug-like molecules (MOSES conformers, elements H C N O F S Cl Br; moldiff/configs/drugs_builtin.yaml)
# drugs-scaffold: drugs fine-tuned the same way (moldiff/configs/drugs_scaffold.yaml)
BUILTIN = {"qm9": MODELS_DIR / "qm9.pt", "qm9-edm": MODELS_DIR / "qm9_edm.pt", "qm9-fast": MODELS_DIR / "qm9_fast.pt",
           "qm9-cond": MODELS_DIR / "qm9_cond.pt", "qm9-scaffold": MODELS_DIR / "qm9_scaffold.pt",
           "drugs": MODELS_DIR / "drugs.pt", "drugs-scaffold": MODELS_DIR / "drugs_scaffold.pt"}  # fmt: skip
DEFAULT_MODEL = "qm9"
# Property predictors of QM9's alpha gap homo lumo mu Cv (moldiff.property_model).
# qm9-predictor: noisy, for energy guidance and steering (--guide, --steer; moldiff/configs/predictor_qm9.yaml)
# qm9-predictor-long: the same predictor trained on at a lower learning rate, a second reader for steering
# qm9-judge: clean, trained on the other half of QM9's training split, to score finished molecules
BUILTIN_PREDICTORS = {"qm9-predictor": MODELS_DIR / "qm9_predictor.pt",
                      "qm9-predictor-long": MODELS_DIR / "qm9_predictor_long.pt",
                      "qm9-judge": MODELS_DIR / "qm9_judge.pt"}  # fmt: skip


def _resolve(name_or_path: str, builtin: dict[str, Path], what: str) -> Path:
    if name_or_path in builtin:
        path = builtin[name_or_path]
        if not path.exists():
            raise MoldiffError(f"the built-in {what} {name_or_path!r} is not installed at {path}")
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise MoldiffError(f"no {what} file {path} (built-in {what}s: {', '.join(builtin)})")
    return path


def resolve_model(name_or_path: str | None) -> Path:
    """A built-in model name (``qm9``, ``qm9-edm``, ``qm9-fast``, ``qm9-cond``, ``qm9-scaffold``,
    ``drugs``, ``drugs-scaffold``) or a file path -> the checkpoint path."""
    return _resolve(name_or_path or DEFAULT_MODEL, BUILTIN, "model")


def resolve_predictor(name_or_path: str) -> Path:
    """A built-in property predictor name (``qm9-predictor``, ``qm9-predictor-long``, ``qm9-judge``)
    or a file path (``moldiff train-predictor`` writes OUT_DIR/predictor.pt) -> the file's path."""
    return _resolve(name_or_path, BUILTIN_PREDICTORS, "predictor")


def load_generator(name_or_path: str | None, device: str = "cpu"):
    """(MoleculeGenerator with EMA weights, RunConfig, payload) from a model or training state."""
    from moldiff.config import validate_config
    from moldiff.generator import MoleculeGenerator, build_network
    from moldiff.train.checkpoint import load_checkpoint

    path = resolve_model(name_or_path)
    payload = load_checkpoint(path)
    from moldiff.flowmap.generator import is_flowmap_payload, load_flowmap_generator

    if is_flowmap_payload(payload):  # a flow map: its generator samples with the ``flow-map`` solver
        return (*load_flowmap_generator(payload, device), payload)
    config = validate_config(payload["config"])
    net = build_network(config)
    try:
        net.load_state_dict(payload["ema"])
    except (RuntimeError, KeyError) as exc:
        raise MoldiffError(f"{path}: weights do not fit the network its config describes ({str(exc)[:120]})") from None
    net.to(device).eval()
    hist = {int(k): int(v) for k, v in payload["atom_count_hist"].items()}
    return MoleculeGenerator.from_config(config, net, hist), config, payload
