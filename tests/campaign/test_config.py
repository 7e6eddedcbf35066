"""The campaign file: the example validates; every mistake is one line naming the key."""

from pathlib import Path

import pytest
import yaml

from moldiff import defaults

from moldiff.campaign.config import load_campaign, validate_campaign
from moldiff.cli.main import main
from moldiff.errors import MoldiffError

EXAMPLE = Path(__file__).parents[2] / "moldiff" / "configs" / "campaigns" / "example.yaml"
SCAFFOLD_EXAMPLE = EXAMPLE.with_name("scaffold_example.yaml")
BASE = {"name": "c", "n_molecules": 10}


def test_example_campaign_validates():
    config = load_campaign(EXAMPLE)
    assert config.model == "drugs-scaffold" and config.filters.ranges["qed"].min == 0.6 and config.filters.alerts == ["pains"]
    assert config.n_batches == -(-config.n_molecules // config.sampling.batch_size)
    assert config.guidance is None and config.scaffold.smiles == "*NC(=O)c1ccccc1" and config.filters.scaffold
    assert config.steer.particles == 4 and config.steer.reader == "xyz2mol"


def test_overrides_merge_into_the_files_sections():
    config = load_campaign(EXAMPLE, {"sampling": {"steps": 20}, "scoring": {"fcd": False}, "n_molecules": 8})
    assert config.sampling.steps == 20 and config.sampling.types == "closed-shell"  # the file's other keys stay
    assert config.sampling.batch_size == 25 and not config.scoring.fcd and config.scoring.posebusters == "fast"
    assert config.n_molecules == 8 and load_campaign(EXAMPLE, {"steer": None}).steer is None


def test_scaffold_example_validates_for_the_scaffold_model():
    config = load_campaign(SCAFFOLD_EXAMPLE)
    spec = config.guidance_spec()
    assert config.model == "qm9-scaffold" and spec.scaffold_smiles == "c1ccncc1" and (spec.jump, spec.resamples) == (1, 1)
    assert spec.reconstruction == defaults.RECONSTRUCTION
    assert spec.steer == () and spec.steer_reader == "xyz2mol" and spec.particles == 4


@pytest.mark.parametrize("change, needle", [
    ({"n_molecules": "ten"}, "c.yaml: key 'n_molecules': expected an integer >= 1 (got 'ten')"),
    ({"n_molecules": 0}, "key 'n_molecules': expected an integer >= 1 (got 0)"),
    ({"filters": {"ranges": {"qed": {"min": "high"}}}}, "key 'filters.ranges.qed.min': expected a number or null (got 'high')"),
    ({"filters": {"ranges": {"qd": {"min": 0.6}}}}, "unknown score 'qd'; expected one of qed, sa"),
    ({"filters": {"ranges": {"qed": {"min": 0.9, "max": 0.1}}}}, "key 'filters.ranges.qed': min (0.9) is above max"),
    ({"filters": {"alerts": ["pain"]}}, "key 'filters.alerts.0': expected one of 'pains', 'brenk' (got 'pain')"),
    ({"desirability": {"qed": {"transform": "sigmoidal", "low": 0, "high": 1}}}, "key 'desirability.qed.transform'"),
    ({"desirability": {"qed": {"transform": "sigmoid", "low": 1, "high": 0}}}, "low (1.0) must be below high"),
    ({"desirability": {"qed": {"transform": "linear", "low": 0, "high": 1, "weight": 0}}}, "weight"),
    ({"guidance": {"qed": 0.9}}, "unknown key 'guidance.qed'"),
    ({"guidance": {}}, "key 'guidance': give targets (a conditional model) or guide"),
    ({"guidance": {"targets": {"foo": 1}}}, "key 'guidance.targets': unknown property 'foo'"),
    ({"guidance": {"targets": {"gap": "4.5parsec"}}}, "key 'guidance.targets': gap: unit 'parsec' does not fit"),
    ({"guidance": {"targets": {"gap": [1]}}}, "key 'guidance.targets.gap': expected a number with an optional unit"),
    ({"guidance": {"guide": {"qed": "maxx"}, "predictor": "p.pt"}}, "key 'guidance.guide.qed': cannot read 'maxx': expected a number with an optional unit (4.5eV), max or min"),
    ({"guidance": {"guide": {"qed": {"value": "max", "weight": "x"}}, "predictor": "p.pt"}}, "key 'guidance.guide.qed.weight': expected a number (got 'x')"),
    ({"guidance": {"guide": {"qed": "max"}}}, "key 'guidance': guide needs predictor"),
    ({"guidance": {"targets": {"gap": 4}, "predictor": "p.pt"}}, "key 'guidance': predictor is used only with guide"),
    ({"guidance": {"guide": {"qed": "max"}, "predictor": "p.pt", "guidance_scale": 2}}, "guidance_scale needs targets"),
    ({"guidance": {"targets": {"gap": 4}, "guide_scale": -1}}, "key 'guidance.guide_scale'"),
    ({"scaffold": "C1CC"}, "key 'scaffold.smiles': unparsable SMILES 'C1CC'"),
    ({"scaffold": {"sdf": "frag.xyz"}}, "key 'scaffold.sdf': must be an SDF file"),
    ({"scaffold": {"smiles": "CO", "sdf": "frag.sdf"}}, "key 'scaffold': give the scaffold as smiles or as sdf, not both"),
    ({"scaffold": {"smiles": "CO", "n_atoms": 9}}, "key 'scaffold': set the atom count in sampling.n_atoms"),
    ({"scaffold": {"smiles": "CO", "jump": 0}}, "key 'scaffold.jump': expected an integer >= 1 (got 0)"),
    ({"scaffold": {"smiles": "CO", "reconstruction": -1}}, "key 'scaffold.reconstruction'"),
    ({"scaffold": {"smiles": "CO", "resamples": 2}}, "unknown key 'scaffold.resamples'"),
    ({"sampling": {"stepz": 3}}, "unknown key 'sampling.stepz'"),
    ({"diversity": {"max_per_scaffold": 0}}, "key 'diversity.max_per_scaffold'"),
    ({"scoring": {"posebusters": "yes"}}, "key 'scoring.posebusters'"),
    ({"filters": {"posebusters": True}}, "filters.posebusters needs scoring.posebusters"),
    ({"steer": {"rewards": {"gap": "max"}}}, "rewards gap need predictor"),
    ({"steer": {"rewards": {"qed": "max"}, "predictor": "p.pt"}}, "predictor is used only with rewards RDKit cannot"),
    ({"steer": {"rewards": {"qed": "up"}}}, "key 'steer.rewards.qed': cannot read 'up'"),
    ({"steer": {"particles": 0}}, "key 'steer.particles'"),
    ({"steer": {"window": 1.5}}, "key 'steer.window'"),
    ({"steer": {"select": "top"}}, "key 'steer.select'"),
    ({"steer": {"reader": "obabel"}}, "key 'steer.reader'"),
])  # fmt: skip
def test_invalid_campaigns_name_the_key(change, needle):
    with pytest.raises(MoldiffError) as err:
        validate_campaign({**BASE, **change}, "c.yaml")
    message = str(err.value)
    assert needle in message and "\n" not in message and message.startswith("c.yaml: ")


def test_steering_keys_mirror_the_sample_options():
    config = validate_campaign({**BASE, "guidance": {"guide": {"QED": "max", "logp": {"value": 2.5, "weight": 0.5}},
                                                     "predictor": "p.pt", "guide_scale": 2},
                                "scaffold": "c1ccncc1"})  # fmt: skip
    spec = config.guidance_spec()
    assert [(t.name, t.target, t.direction, t.weight) for t in spec.terms] == [("logp", 2.5, 0, 0.5), ("qed", None, 1, 1.0)]
    assert (spec.predictor, spec.guide_scale, spec.scaffold_smiles, spec.scaffold_sdf) == ("p.pt", 2, "c1ccncc1", None)
    assert validate_campaign({**BASE, "scaffold": "frag.SDF"}).guidance_spec().scaffold_sdf == "frag.SDF"
    targets = validate_campaign({**BASE, "guidance": {"targets": {"gap": "4.5eV"}, "guidance_scale": 2}})
    assert targets.guidance_spec().targets == {"gap": 4500.0}
    plain = validate_campaign(BASE)
    assert not plain.guidance_spec().active and config.fingerprint() != plain.fingerprint()


def test_missing_key_and_bad_yaml_from_the_cli(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"name": "a"}))
    (tmp_path / "b.yaml").write_text("name: [unclosed\n")
    (tmp_path / "c.yaml").write_text("- just\n- a list\n")
    for name, needle in [("a", "missing key 'n_molecules'"), ("b", "not valid YAML"), ("c", "must be a mapping"),
                         ("missing", "config file not found")]:  # fmt: skip
        code = main(["campaign", "run", str(tmp_path / f"{name}.yaml"), "--no-track"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error:") and needle in err and "\n" not in err, err


def test_steering_section_becomes_the_sample_options():
    spec = validate_campaign({**BASE, "steer": {"rewards": {"qed": "max", "sa": {"value": "min", "weight": 0.1}},
                                                "particles": 8, "resamplings": 2, "window": 0.5}}).guidance_spec()  # fmt: skip
    assert [(t.name, t.direction, t.weight) for t in spec.steer] == [("qed", 1, 1.0), ("sa", -1, 0.1)]
    assert (spec.particles, spec.resamplings, spec.steer_window, spec.steer_select) == (8, 2, 0.5, "best")
    assert validate_campaign({**BASE, "steer": {}}).guidance_spec().steer == ()  # validity alone
    assert validate_campaign(BASE).guidance_spec().steer is None
    predicted = validate_campaign({**BASE, "steer": {"rewards": {"gap": "6.5eV"}, "predictor": "gap.pt"}})
    assert predicted.guidance_spec().predictor == "gap.pt" and predicted.guidance_spec().steer[0].target == 6500.0


def test_steering_settings_decide_the_fingerprint():
    # a resumed campaign must not mix batches steered differently
    one = validate_campaign({**BASE, "steer": {"particles": 2}})
    assert one.fingerprint() != validate_campaign({**BASE, "steer": {"particles": 4}}).fingerprint()
    assert one.fingerprint() != validate_campaign(BASE).fingerprint()


def test_precision_decides_the_fingerprint_and_is_checked():
    bf16 = validate_campaign({**BASE, "sampling": {"precision": "bf16"}})
    assert bf16.sampling.precision == "bf16" and bf16.fingerprint() != validate_campaign(BASE).fingerprint()
    with pytest.raises(MoldiffError, match="sampling.precision"):
        validate_campaign({**BASE, "sampling": {"precision": "fp16"}})



def test_steering_sections_are_typed_and_shared_with_sample():
    from moldiff.config import Objective, Quantity, SampleConfig

    steering = {"guidance": {"targets": {"GAP": "4.5 eV"}, "guide": {"qed": "max:2", "logp": {"value": 2.5, "weight": 0.5}},
                             "predictor": "p.pt"},
                "steer": {"rewards": {"sa": "min"}}, "scaffold": "c1ccncc1"}  # fmt: skip
    campaign, sample = validate_campaign({**BASE, **steering}), SampleConfig.model_validate(steering)
    assert campaign.guidance.targets == {"gap": Quantity(value=4.5, unit="eV")}
    assert campaign.guidance.guide["qed"] == Objective(value="max", weight=2) and campaign.steer == sample.steer
    # the library objects come from the typed values; campaigns order the terms by name
    spec, sample_spec = campaign.guidance_spec(), sample.guidance_spec()
    assert spec.targets == {"gap": 4500.0} and [t.name for t in spec.terms] == ["logp", "qed"]
    assert [t.name for t in sample_spec.terms] == ["qed", "logp"] and set(spec.terms) == set(sample_spec.terms)
    # the resolved file reads back to the same campaign
    assert validate_campaign(campaign.model_dump(mode="json")) == campaign


@pytest.mark.parametrize("raw, fingerprint", [
    (EXAMPLE, "8b30f6adcc7116db"),
    (SCAFFOLD_EXAMPLE, "81fa2c5b5d28350d"),
    ({**BASE, "guidance": {"targets": {"gap": 4500}}}, "135ba875b312e95d"),
    ({**BASE, "guidance": {"guide": {"qed": {"value": "max", "weight": 2}}, "predictor": "p.pt"}}, "cddfec0c368fd8c9"),
    ({**BASE, "steer": {"rewards": {"qed": "max", "sa": {"value": "min", "weight": 0.1}}, "particles": 8}}, "109b913bb55dc0b7"),
])  # fmt: skip
def test_fingerprints_stay_the_same(raw, fingerprint):
    # a campaign resumed with a later moldiff must still recognise its batches
    config = load_campaign(raw) if isinstance(raw, Path) else validate_campaign(raw)
    assert config.fingerprint() == fingerprint
