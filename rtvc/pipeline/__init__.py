"""The per-session streaming pipeline: wire audio in, converted wire audio out."""

from rtvc.pipeline.pipeline import BlockJob, Pipeline

__all__ = ["BlockJob", "Pipeline"]
