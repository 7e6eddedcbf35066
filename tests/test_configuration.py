"""The configuration machinery every command shares: files found by name, ``--set`` overrides,
one-line errors that name the key and what it expects, typed property values, the schemas."""

from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from moldiff.campaign.config import load_campaign
from moldiff.cli.main import main
from moldiff.config import (CAMPAIGNS, SCHEMAS, Objective, Quantity, RunConfig, SampleConfig, Tracking, load_config,
                            shipped_configs)
from moldiff.config.errors import _members
from moldiff.errors import MoldiffError


def _error(*args, **kwargs) -> str:
    with pytest.raises(MoldiffError) as info:
        load_config(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_a_bad_value_names_the_file_the_key_and_what_it_expects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample.yaml").write_text("steer: {particles: many}\n")
    assert _error("sample.yaml", schema=SampleConfig) == "sample.yaml: key 'steer.particles': expected an integer >= 1 (got 'many')"
    # a value from --set names the override instead of the file
    assert _error("sample.yaml", ["steer.particles=0", "steer.window=2"], SampleConfig).startswith("--set steer.")
    assert _error(None, ["train.lr=fast"]) == "--set train.lr: expected a number (got 'fast')"


@pytest.mark.parametrize("command, raw, message", [
    ("train", {"train": {"lrr": 1}}, "unknown key 'train.lrr'; did you mean 'lr'?"),
    ("train-flowmap", {"flowmap": {"objective": "magic"}}, "key 'flowmap.objective': expected one of 'teacher-ode', "
                                                          "'lagrangian', 'meanflow', 'dmd' (got 'magic')"),
    ("train-predictor", {"train": {"max_minutes": "soon"}}, "key 'train.max_minutes': expected a number or null (got 'soon')"),
    ("sample", {"sampling": {"n_atoms": 500}}, "key 'sampling.n_atoms': expected an integer >= 1 and <= 200 or null (got 500)"),
    ("campaign", {"name": "c"}, "missing key 'n_molecules' (expected an integer >= 1)"),
    ("campaign", {"name": "c", "n_molecules": 2, "tracking": {"enabled": "maybe"}}, "key 'tracking.enabled': expected true or false (got 'maybe')"),
])  # fmt: skip
def test_every_command_reports_errors_the_same_way(tmp_path, command, raw, message):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert _error(tmp_path / "c.yaml", schema=SCHEMAS[command]) == f"{tmp_path / 'c.yaml'}: {message}"


def test_shipped_configs_are_found_by_name_and_old_paths_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("qm9_builtin").name == "qm9_builtin"
    assert load_campaign("example").name == "example"
    (tmp_path / "qm9_builtin").write_text("name: mine\n")  # a file of that name wins
    assert load_config("qm9_builtin").name == "mine"
    assert _error("configs/qm9.yaml").endswith("the shipped configs are now found by name (--config qm9)")
    with pytest.raises(MoldiffError, match=r"found by name \(moldiff campaign run example\)$"):
        load_campaign("configs/campaigns/example.yaml")
    assert "shipped configs: drugs_builtin, " in _error("no_such_config")


def test_config_list_and_show(capsys):
    assert main(["config", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "moldiff train --config qm9_builtin" in "\n".join(lines) and len(lines) == len(shipped_configs()) + 2
    assert any(line.split() == ["example", "moldiff", "campaign", "run", "example"] for line in lines)
    assert main(["config", "show", "example", "--set", "sampling.steps=20"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown == load_campaign("example", {"sampling": {"steps": 20}}).model_dump(mode="json")
    assert main(["config", "show", "--for", "sample"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == SampleConfig().model_dump(mode="json")
    assert main(["config", "show", "qm9"]) == 0
    assert RunConfig.model_validate(yaml.safe_load(capsys.readouterr().out)) == load_config("qm9")
    assert main(["config", "show", "--for", "deploy"]) == 2
    assert "expected one of train, train-flowmap" in capsys.readouterr().err


def test_property_values_read_the_same_from_yaml_and_the_command_line():
    assert Objective.model_validate("4.5eV:2") == Objective(value=4.5, unit="eV", weight=2)
    assert Objective.model_validate({"value": "4.5 eV", "weight": 2}) == Objective(value=4.5, unit="eV", weight=2)
    assert Objective.model_validate("MAX").value == "max" and Quantity.model_validate(2).value == 2.0
    # written back as they were written, so a resolved config reads like the file
    assert [Objective.model_validate(v).model_dump() for v in ("max", "min:0.5", 2.5, "4.5eV")] == \
        ["max", {"value": "min", "weight": 0.5}, 2.5, "4.5eV"]  # fmt: skip
    assert Objective(value=4.5, unit="eV", weight=2).term("gap").target == 4500.0
    with pytest.raises(MoldiffError, match=r"--guide 'qed=up': cannot read 'up'"):
        Objective.parse("up", "--guide 'qed=up'")


def test_every_key_is_described_for_the_reference():
    def walk(model, seen):
        assert model.__doc__, model
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
            stack = list(_members(info.annotation))
            while stack:
                member = stack.pop()
                stack.extend(get_args(member))
                if isinstance(member, type) and issubclass(member, BaseModel) and member not in seen:
                    seen.add(member)
                    walk(member, seen)

    assert set(SCHEMAS) == {"train", "train-flowmap", "train-predictor", "sample", "campaign"}
    for schema in SCHEMAS.values():
        walk(schema, set())
        schema.model_json_schema()


def test_one_tracking_section_with_per_command_defaults():
    for command in ("train", "train-flowmap", "sample", "campaign"):
        assert SCHEMAS[command].model_fields["tracking"].annotation is Tracking
    assert SCHEMAS["campaign"].model_fields["tracking"].default.experiment == "moldiff-campaigns"
    assert not SampleConfig().tracking.enabled and RunConfig().tracking.enabled


def test_the_sampling_grids_are_the_solvers():
    from moldiff.config.sample import GRIDS
    from moldiff.solvers.grids import GRIDS as SOLVER_GRIDS

    assert set(GRIDS) == set(SOLVER_GRIDS)
    assert CAMPAIGNS.parent.name == "configs"
