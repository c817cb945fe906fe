"""Settings of experiment tracking."""

from pydantic import BaseModel, ConfigDict, Field


class TrackingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Log the run to MLflow.")
    uri: str | None = Field(
        None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI or sqlite in the tunelab home."
    )
    experiment: str = Field("tunelab", description="MLflow experiment name.")
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags for the run.")
    register_as: str | None = Field(
        None, description="Register the tuned model in the MLflow model registry under this name."
    )
    tensorboard: bool = Field(False, description="Also write TensorBoard event files.")
