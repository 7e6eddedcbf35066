"""The campaign file: the example validates; every mistake is one line naming the key."""

from pathlib import Path

import pytest
import yaml

from moldiff.campaign.config import load_campaign, validate_campaign
from moldiff.cli.main import main
from moldiff.errors import MoldiffError

EXAMPLE = Path(__file__).parents[2] / "configs" / "campaigns" / "example.yaml"
BASE = {"name": "c", "n_molecules": 10}


def test_example_campaign_validates():
    config = load_campaign(EXAMPLE)
    assert config.model == "qm9" and config.filters.ranges["qed"].min == 0.6 and config.filters.alerts == ["pains"]
    assert config.n_batches == -(-config.n_molecules // config.sampling.batch_size)


@pytest.mark.parametrize("change, needle", [
    ({"n_molecules": "ten"}, "key 'n_molecules': Input should be a valid integer"),
    ({"n_molecules": 0}, "key 'n_molecules': Input should be greater than or equal to 1"),
    ({"filters": {"ranges": {"qed": {"min": "high"}}}}, "key 'filters.ranges.qed.min': Input should be a valid number"),
    ({"filters": {"ranges": {"qd": {"min": 0.6}}}}, "unknown score 'qd'; expected one of qed, sa"),
    ({"filters": {"ranges": {"qed": {"min": 0.9, "max": 0.1}}}}, "key 'filters.ranges.qed': min (0.9) is above max"),
    ({"filters": {"alerts": ["pain"]}}, "key 'filters.alerts.0': Input should be 'pains' or 'brenk'"),
    ({"desirability": {"qed": {"transform": "sigmoidal", "low": 0, "high": 1}}}, "key 'desirability.qed.transform'"),
    ({"desirability": {"qed": {"transform": "sigmoid", "low": 1, "high": 0}}}, "low (1.0) must be below high"),
    ({"desirability": {"qed": {"transform": "linear", "low": 0, "high": 1, "weight": 0}}}, "weight"),
    ({"guidance": {"qed": 0.9}}, "key 'guidance': guidance is not supported yet"),
    ({"scaffold": "NC(=O)c1ccccc1"}, "key 'scaffold': scaffold-constrained generation is not supported yet"),
    ({"sampling": {"stepz": 3}}, "unknown key 'sampling.stepz'"),
    ({"diversity": {"max_per_scaffold": 0}}, "key 'diversity.max_per_scaffold'"),
    ({"scoring": {"posebusters": "yes"}}, "key 'scoring.posebusters'"),
    ({"filters": {"posebusters": True}}, "filters.posebusters needs scoring.posebusters"),
])  # fmt: skip
def test_invalid_campaigns_name_the_key(change, needle):
    with pytest.raises(MoldiffError) as err:
        validate_campaign({**BASE, **change}, "c.yaml")
    message = str(err.value)
    assert needle in message and "\n" not in message and message.startswith("c.yaml: ")


def test_missing_key_and_bad_yaml_from_the_cli(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"name": "a"}))
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    (tmp_path / "c.yaml").write_text("- just\n- a list\n")
    for name, needle in [("a", "missing key 'n_molecules'"), ("b", "not valid YAML"), ("c", "must be a mapping"),
                         ("missing", "campaign file not found")]:  # fmt: skip
        code = main(["campaign", "run", str(tmp_path / f"{name}.yaml"), "--no-track"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error:") and needle in err and "\n" not in err, err
