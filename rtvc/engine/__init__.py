"""The conversion engine: worker threads that run every session's blocks, batching model calls per voice."""

from __future__ import annotations

from rtvc.engine.engine import Engine, EngineTask, Handle, PassReport
from rtvc.engine.load import Admission, LoadMeter, predicted_load
from rtvc.engine.settings import EngineSettings

__all__ = ["Admission", "Engine", "EngineSettings", "EngineTask", "Handle", "LoadMeter", "PassReport", "predicted_load"]
