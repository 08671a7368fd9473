"""Source adapters: each turns one parsed dump line into canonical records (see docs/sources.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from event_pipeline.adapters import hackle, orbee, suprsend, trakio
from event_pipeline.adapters.base import CHECK_COLUMNS, AdapterError
from event_pipeline.adapters.mapping import MappingAdapter, MappingError, load_mapping

__all__ = ["CHECK_COLUMNS", "Adapter", "AdapterError", "MappingError", "adapters_for"]


@dataclass(frozen=True)
class Adapter:
    source: str
    records: Callable[[dict[str, Any], int], list]
    # required canonical fields, per message type ("*" = every type)
    required: dict[str, tuple[str, ...]]
    # top-level body fields the adapter knows; others are kept in `raw` and reported as schema drift
    known_fields: frozenset[str] | None = None


BUILTIN = {
    "hackle": Adapter("hackle", hackle.records, {"*": hackle.REQUIRED}, hackle.KNOWN_FIELDS),
    "suprsend": Adapter("suprsend", suprsend.records, {"*": suprsend.REQUIRED}, suprsend.KNOWN_FIELDS),
    "trakio": Adapter("trakio", trakio.records, trakio.REQUIRED_BY_TYPE, trakio.KNOWN_FIELDS),
    "orbee": Adapter("orbee", orbee.records, {"*": orbee.REQUIRED}),
}


def _from_mapping(mapping: MappingAdapter) -> Adapter:
    return Adapter(mapping.source, mapping.records, {"*": mapping.required})


def adapters_for(mappings_dir: Path | None) -> dict[str, Adapter]:
    """Built-in adapters plus one per YAML mapping file in `mappings_dir`."""
    adapters = dict(BUILTIN)
    if mappings_dir and mappings_dir.is_dir():
        for path in sorted(mappings_dir.glob("*.y*ml")):
            mapping = load_mapping(path)
            if mapping.source in adapters:
                raise MappingError(f"{path}: source {mapping.source!r} already has an adapter")
            adapters[mapping.source] = _from_mapping(mapping)
    return adapters
