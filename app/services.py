"""The dependencies handed to every handler through ``initialize(services=...)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.executor import ModelExecutor
from app.metrics import Metrics
from app.models_state import ModelState
from app.settings import Settings
from models.pipeline import Policy


@dataclass
class Services:
    """Settings, executor, model state and what later subsystems add (inbox, metrics).

    One instance per application; handlers read it, never replace it.
    """

    settings: Settings
    tokens: tuple[str, ...]
    executor: ModelExecutor
    models: ModelState
    policy: Policy
    version: str = "0.1.0"
    extras: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
