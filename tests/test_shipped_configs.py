"""Every config the project ships validates against the schema its command reads it with, so a
renamed key cannot leave a documented command broken."""

import pytest

from moldiff.config import (CAMPAIGNS, CONFIGS, SCHEMAS, command_of, is_flowmap_config, load_config, read_config,
                            shipped_configs)

SHIPPED = {**shipped_configs(CONFIGS), **shipped_configs(CAMPAIGNS)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_validates_by_name(name):
    path = SHIPPED[name]
    command = command_of(read_config(path), path)
    folder = CAMPAIGNS if path.parent == CAMPAIGNS else CONFIGS
    assert isinstance(load_config(name, schema=SCHEMAS[command], folder=folder), SCHEMAS[command])


def test_each_shipped_config_is_read_by_its_command():
    commands = {name: command_of(read_config(path), path) for name, path in SHIPPED.items()}
    assert {n for n, c in commands.items() if c == "train-predictor"} == {"predictor_qm9", "predictor_druglike", "judge_qm9"}
    assert {n for n, c in commands.items() if c == "campaign"} == {"example", "scaffold_example"}
    assert all(is_flowmap_config(n) == (c == "train-flowmap") for n, c in commands.items())  # as `moldiff train` decides


def test_scaffold_models_declare_both_scaffold_inputs():
    for name in ("qm9_valence", "drugs_scaffold"):
        model = load_config(name).model
        assert model.known_atoms and model.known_valence, name
