"""The base every config model derives from, and the tracking section they share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A config section: unknown keys are errors, so a misspelt key never goes unnoticed."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class Tracking(Strict):
    """MLflow tracking of the run: parameters, metrics and output files."""

    enabled: bool = Field(True, description="Log the run to MLflow.")
    uri: str | None = Field(None, description="MLflow tracking URI; --tracking-uri and $MLFLOW_TRACKING_URI "
                            "take precedence. Default: sqlite:///mlflow.db in the working directory.")  # fmt: skip
    experiment: str = Field("moldiff", description="MLflow experiment the run is logged under.")
