from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ColumnType = Literal["numeric", "categorical", "text", "ignored"]


class TrainParams(BaseModel):
    """Per-training overrides of the ML_* defaults."""

    model_config = ConfigDict(extra="forbid")

    hidden_layer_sizes: list[int] | None = Field(None, min_length=1, max_length=8)
    activation: Literal["relu", "tanh", "logistic", "identity"] | None = None
    solver: Literal["adam", "sgd", "lbfgs"] | None = None
    max_iter: int | None = Field(None, ge=1, le=100_000)
    batch_size: int | Literal["auto"] | None = None
    learning_rate_init: float | None = Field(None, gt=0, le=10)
    alpha: float | None = Field(None, ge=0, le=100)
    early_stopping: bool | None = None
    validation_fraction: float | None = Field(None, gt=0, lt=1)
    holdout_fraction: float | None = Field(None, gt=0, lt=0.9)
    adaptive_architecture: bool | None = None
    device: Literal["auto", "cpu", "cuda"] | None = None
    random_state: int | None = Field(None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _layer_units(self) -> TrainParams:
        if self.hidden_layer_sizes and any(not 1 <= units <= 4096 for units in self.hidden_layer_sizes):
            raise ValueError("hidden_layer_sizes: every layer needs 1 to 4096 units")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ValueError("batch_size must be 'auto' or a positive number")
        return self


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_key: str = Field(min_length=1, max_length=100)
    target: str = Field(min_length=1, max_length=200, description="the column to predict")
    data: list[dict[str, Any]] | None = Field(None, description="inline records")
    dataset_id: str | None = Field(None, description="an uploaded dataset")
    features: list[str] | None = Field(None, min_length=1)
    column_types: dict[str, ColumnType] | None = None
    params: TrainParams | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> TrainRequest:
        if self.data is not None and not self.data:
            raise ValueError("'data' is empty: send at least one record")
        return self
