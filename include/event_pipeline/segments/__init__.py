"""Behavioural segmentation: YAML rule, RFM and lifecycle definitions evaluated hourly into `segments.*`."""

from event_pipeline.segments.definitions import (
    DefinitionError,
    SegmentDefinition,
    default_definitions_dir,
    load_definitions,
    validate_definitions,
)
from event_pipeline.segments.evaluate import evaluate_segments
from event_pipeline.segments.explain import explain_membership

__all__ = [
    "DefinitionError",
    "SegmentDefinition",
    "default_definitions_dir",
    "evaluate_segments",
    "explain_membership",
    "load_definitions",
    "validate_definitions",
]
