"""Every config the project ships validates against the schema its command reads it with, so a
renamed key cannot leave a documented command broken."""

from pathlib import Path

import pytest

from moldiff.config import FlowMapRunConfig, PredictorConfig, RunConfig, is_flowmap_config, load_config

CONFIGS = Path(__file__).parents[1] / "configs"
PREDICTOR_CONFIGS = {"predictor_qm9.yaml", "predictor_druglike.yaml", "judge_qm9.yaml"}  # moldiff train-predictor


def schema_for(path: Path):
    if path.name in PREDICTOR_CONFIGS:
        return PredictorConfig
    return FlowMapRunConfig if is_flowmap_config(path) else RunConfig  # as `moldiff train` decides


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_config_validates(path):
    schema = schema_for(path)
    assert isinstance(load_config(path, schema=schema), schema)


def test_scaffold_models_declare_both_scaffold_inputs():
    for name in ("qm9_valence.yaml", "drugs_scaffold.yaml"):
        model = load_config(CONFIGS / name).model
        assert model.known_atoms and model.known_valence, name
