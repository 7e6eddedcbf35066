"""Built-in models shipped inside the package, selectable by name, and loading any model file."""

from __future__ import annotations

from pathlib import Path

from moldiff.errors import MoldiffError

MODELS_DIR = Path(__file__).parent
# qm9-fast: a flow map distilled from qm9 (few-step sampling; configs/flowmap_qm9.yaml)
# drugs: drug-like molecules (MOSES conformers, elements H C N O F S Cl Br; configs/drugs_builtin.yaml)
# qm9-scaffold: qm9 fine-tuned to take a scaffold and its open valences as input (configs/qm9_valence.yaml)
# drugs-scaffold: drugs fine-tuned the same way (configs/drugs_scaffold.yaml)
BUILTIN = {"qm9": MODELS_DIR / "qm9.pt", "qm9-fast": MODELS_DIR / "qm9_fast.pt", "drugs": MODELS_DIR / "drugs.pt",
           "qm9-scaffold": MODELS_DIR / "qm9_scaffold.pt", "drugs-scaffold": MODELS_DIR / "drugs_scaffold.pt"}  # fmt: skip
DEFAULT_MODEL = "qm9"


def resolve_model(name_or_path: str | None) -> Path:
    """A built-in model name (``qm9``, ``qm9-fast``, ``drugs``, ``qm9-scaffold``, ``drugs-scaffold``) or a
    file path -> the checkpoint path."""
    name_or_path = name_or_path or DEFAULT_MODEL
    if name_or_path in BUILTIN:
        path = BUILTIN[name_or_path]
        if not path.exists():
            raise MoldiffError(f"the built-in model {name_or_path!r} is not installed at {path}")
        return path
    path = Path(name_or_path)
    if not path.exists():
        raise MoldiffError(f"no model file {path} (built-in models: {', '.join(BUILTIN)})")
    return path


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
