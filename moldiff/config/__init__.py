"""moldiff's configuration: one typed, validated model per command, read from YAML.

Every command reads its config the same way (:func:`load_config`): a YAML file or the name of a
config shipped with moldiff (``--config qm9_builtin``), ``--set a.b=value`` overrides read as
YAML, and validation against the command's model (:data:`SCHEMAS`), where a wrong key or value is
one line naming the key and what it expects.

``base`` (the strict base model, the tracking section), ``loader`` (files, names, overrides),
``errors`` (the one-line messages), ``run`` (the training configs) and ``sample`` (``moldiff
sample`` and the sampling and steering sections campaigns share). The campaign file's model is
:class:`moldiff.campaign.config.CampaignConfig`.
"""

from __future__ import annotations

from moldiff.config.base import Strict, Tracking
from moldiff.config.loader import (CAMPAIGNS, CONFIGS, apply_overrides, command_of, dump_yaml, find_config,
                                   is_flowmap_config, load_config, parse_value, read_config, shipped_configs,
                                   validate_config)
from moldiff.config.run import (VIEW_DEFAULTS, DataConfig, DiffusionConfig, FlowMapConfig, FlowMapRunConfig, ModelConfig,
                                PredictorConfig, PredictorTrainConfig, RunConfig, TrainConfig)
from moldiff.config.sample import Guidance, Objective, Quantity, SampleConfig, Sampling, Scaffold, Steer


def schemas() -> dict:
    """The config model of each command, by command name."""
    from moldiff.campaign.config import CampaignConfig

    return {"train": RunConfig, "train-flowmap": FlowMapRunConfig, "train-predictor": PredictorConfig,
            "sample": SampleConfig, "campaign": CampaignConfig}


def __getattr__(name: str):
    if name == "SCHEMAS":  # built on first use: the campaign's model imports this package
        return schemas()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CAMPAIGNS", "CONFIGS", "DataConfig", "DiffusionConfig", "FlowMapConfig", "FlowMapRunConfig", "Guidance",
           "ModelConfig", "Objective", "PredictorConfig", "PredictorTrainConfig", "Quantity", "RunConfig",
           "SCHEMAS", "SampleConfig", "Sampling", "Scaffold", "Steer", "Strict", "TrainConfig", "Tracking",
           "VIEW_DEFAULTS", "apply_overrides", "command_of", "dump_yaml", "find_config", "is_flowmap_config", "load_config", "parse_value", "read_config",
           "schemas", "shipped_configs", "validate_config"]  # fmt: skip
