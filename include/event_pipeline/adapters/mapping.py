"""Declarative adapters: a YAML file maps JSON paths of any JSON-lines source to canonical fields.

    source: gharchive                # folder name under raw/
    message_type: track
    fields:                          # canonical field -> spec
      event_id: id                   # a dotted JSON path
      user_id: actor.login
      event_name: {join: [type, payload.action], sep: "."}   # non-null parts joined
      event_time: created_at
      channel: {const: github}
      value: {path: payload.size, default: 0}
    properties:                      # property name -> JSON path (nested values kept)
      repo: repo.name
    required: [user_id, event_name]  # missing -> quarantined as missing_required_field
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from event_pipeline.adapters.base import (
    as_text,
    finish,
    new_record,
    parse_time,
    set_event_time,
    set_properties,
    set_value,
)
from event_pipeline.contract import CANONICAL_COLUMN_NAMES

# Filled by the loader, never by a mapping.
_NOT_MAPPABLE = {"source", "object_key", "line_number", "record_index", "payload_hash", "raw", "batch_hour"}
MAPPABLE_FIELDS = tuple(c for c in CANONICAL_COLUMN_NAMES if c not in _NOT_MAPPABLE)
_SPEC_KEYS = {"path", "default", "join", "sep", "const", "first"}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _compile(spec: Any, where: str):
    if isinstance(spec, str):
        return lambda obj: _get(obj, spec)
    if not isinstance(spec, dict) or not spec or set(spec) - _SPEC_KEYS:
        raise MappingError(f"{where}: expected a JSON path or one of {sorted(_SPEC_KEYS)}, got {spec!r}")
    default = spec.get("default")
    if "const" in spec:
        return lambda obj: spec["const"]
    if "join" in spec:
        parts, sep = spec["join"], spec.get("sep", ".")

        def joined(obj):
            values = [_get(obj, p) for p in parts]
            values = [str(v) for v in values if v is not None and v != ""]
            return sep.join(values) if values else default

        return joined
    if "first" in spec:
        paths = spec["first"]
        return lambda obj: next((v for v in (_get(obj, p) for p in paths) if v is not None), default)
    path = spec["path"]
    return lambda obj: (v if (v := _get(obj, path)) is not None else default)


@dataclass
class MappingAdapter:
    source: str
    message_type: str
    getters: dict[str, Any]
    property_getters: dict[str, Any]
    required: tuple[str, ...]
    file: Path

    def __reduce__(self):
        # its getters are closures, which do not pickle: a load worker process compiles the same file again
        return load_mapping, (self.file,)

    def records(self, envelope: dict[str, Any], line_bytes: int) -> list[dict[str, Any]]:
        record = new_record(self.source, envelope, line_bytes)
        record["message_type"] = self.message_type
        values = {field: getter(envelope) for field, getter in self.getters.items()}
        for field in ("user_id", "anonymous_id", "event_name", "idempotency_key", "brand_id", "company_id",
                      "account_id", "tracker_id", "channel", "action", "object", "vendor", "product",
                      "instance_id"):
            if field in values:
                record[field] = as_text(values[field])
        if "message_type" in values and values["message_type"] is not None:
            record["message_type"] = str(values["message_type"])
        set_value(record, values.get("value"))
        props = {name: getter(envelope) for name, getter in self.property_getters.items()}
        if "properties" in values:
            base = values["properties"]
            props = {**base, **props} if isinstance(base, dict) else (props if props else base)
        set_properties(record, {k: v for k, v in props.items() if v is not None} if isinstance(props, dict)
                       else props)
        record["received_at"] = parse_time(values.get("received_at"))
        set_event_time(record, values.get("event_time"), record["received_at"])
        if record["received_at"] is None:
            record["received_at"] = record["event_time"]
        return [finish(record, values.get("event_id"), envelope)]


def load_mapping(path: Path) -> MappingAdapter:
    where = str(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MappingError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise MappingError(f"{where}: expected a mapping with source, fields, properties, required")
    unknown_top = set(doc) - {"source", "description", "message_type", "fields", "properties", "required"}
    if unknown_top:
        raise MappingError(f"{where}: unknown key(s) {sorted(unknown_top)}")
    source = doc.get("source")
    if not isinstance(source, str) or not source:
        raise MappingError(f"{where}: `source` (the folder name under raw/) is required")
    fields = doc.get("fields") or {}
    getters = {}
    for field, spec in fields.items():
        if field not in MAPPABLE_FIELDS:
            raise MappingError(f"{where}: fields.{field} is not a canonical field; use one of {MAPPABLE_FIELDS}")
        getters[field] = _compile(spec, f"{where}: fields.{field}")
    property_getters = {
        name: _compile(spec, f"{where}: properties.{name}") for name, spec in (doc.get("properties") or {}).items()
    }
    required = tuple(doc.get("required") or ())
    for field in required:
        if field not in MAPPABLE_FIELDS:
            raise MappingError(f"{where}: required field {field!r} is not a canonical field")
    return MappingAdapter(
        source=source,
        message_type=doc.get("message_type", "track"),
        getters=getters,
        property_getters=property_getters,
        required=required,
        file=path,
    )
