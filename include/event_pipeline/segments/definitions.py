"""Loads segment definitions from YAML, validates them and derives their content-hash versions."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from event_pipeline.segments.validation import (
    KIND_FIELDS,
    KIND_REQUIRED,
    LIFECYCLE_STAGES,
    BodyValidator,
    Problems,
    leaves,
)

CATALOG_FILE = "catalog.yml"
COMMON_FIELDS = ("key", "kind", "description", "owner", "version")
KINDS = tuple(KIND_FIELDS)
DEFINITIONS_DIR_ENV = "EVENTS_SEGMENTS_DIR"


class DefinitionError(ValueError):
    """Raised when definitions do not validate; `errors` holds one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {error}" for error in self.errors)
        super().__init__(f"{len(self.errors)} problem(s) in segment definitions:\n{lines}")


@dataclass(frozen=True)
class SegmentDefinition:
    key: str
    kind: str
    description: str
    owner: str
    explicit_version: int | None
    body: dict = field(repr=False)
    source: str = ""

    @property
    def content_hash(self) -> str:
        """Hash of what decides membership (kind and normalised body); description and owner excluded."""
        canonical = json.dumps({"kind": self.kind, "body": self.body}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def version(self) -> str:
        if self.explicit_version is None:
            return self.content_hash
        return f"v{self.explicit_version}-{self.content_hash}"

    @property
    def segment_keys(self) -> list[str]:
        if self.kind == "rfm":
            return [f"{self.key}.{segment['name']}" for segment in self.body["segments"]]
        if self.kind == "lifecycle":
            return [f"{self.key}.{stage}" for stage in LIFECYCLE_STAGES]
        return [self.key]

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "description": self.description,
            "owner": self.owner,
            "version": self.explicit_version,
            **self.body,
        }

    def lookbacks(self) -> list[tuple[list[str] | None, int]]:
        """(event names or None for any event, seconds back from as_of) pairs the evaluation must scan."""
        if self.kind == "rfm":
            return [(self.body["qualifying"]["events"], self.body["window"]["from_seconds"])]
        if self.kind == "lifecycle":
            body = self.body
            seconds = max(body["churned_after_seconds"], body["active_within_seconds"] + body["returning_gap_seconds"])
            return [(body["activity"]["events"] if body["activity"] else None, seconds)]
        result: list[tuple[list[str] | None, int]] = []
        for leaf in leaves(self.body["condition"]):
            window = leaf.get("window")
            if leaf["type"] in ("count", "aggregate") or (leaf["type"] == "never" and window):
                result.append((leaf["match"]["events"], window["from_seconds"]))
            elif leaf["type"] == "funnel":
                names = sorted({name for step in leaf["steps"] for name in step["events"]})
                result.append((names, window["from_seconds"]))
                if leaf["not_followed_by"]:
                    result.append((leaf["not_followed_by"]["events"], window["from_seconds"]))
        return result

    def first_seen_events(self) -> list[str]:
        """Event names used by `never` without a window (answered by the per-user first-seen table)."""
        if self.kind != "rule":
            return []
        return sorted(
            {
                name
                for leaf in leaves(self.body["condition"])
                if leaf["type"] == "never" and leaf["window"] is None
                for name in leaf["match"]["events"]
            }
        )


def default_definitions_dir() -> Path:
    """$EVENTS_SEGMENTS_DIR, else the repository's segments/ folder (as the pipeline settings)."""
    configured = os.environ.get(DEFINITIONS_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "segments"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a mapping key given twice (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"field '{key}' is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, label: str, errors: list[str]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        errors.append(f"{label}: cannot read YAML: {exc}")
        return None


def load_catalog(directory: Path, errors: list[str]) -> set[str] | None:
    """Known event names from catalog.yml, or None when there is no catalog (no event-name check)."""
    path = directory / CATALOG_FILE
    if not path.exists():
        return None
    data = _read_yaml(path, str(path), errors)
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"events", "description"} or "events" not in data:
        errors.append(f"{path}: must be a mapping with an `events:` list of event names")
        return None
    events = data["events"]
    if not isinstance(events, list) or not all(isinstance(e, str) and e for e in events):
        errors.append(f"{path}: field 'events': must be a list of event names")
        return None
    return set(events)


def definition_files(directory: Path) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()]
    return sorted((p for p in files if p != directory / CATALOG_FILE), key=lambda p: p.as_posix())


def _parse_definition(
    raw: Any, label: str, position: str, known_events: set[str] | None
) -> tuple[SegmentDefinition | None, list[str]]:
    key = raw.get("key") if isinstance(raw, dict) else None
    shown_key = key if isinstance(key, str) and key else position
    problems = Problems(label, shown_key)
    checker = BodyValidator(problems, known_events)
    if not isinstance(raw, dict):
        problems.add("", "a definition must be a mapping with key, kind, description, owner")
        return None, problems.errors
    kind = raw.get("kind")
    if kind not in KINDS:
        problems.add("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        checker.fields(raw, "", COMMON_FIELDS + tuple(f for fs in KIND_FIELDS.values() for f in fs))
        return None, problems.errors
    fields_ok = checker.fields(
        raw, "", COMMON_FIELDS + KIND_FIELDS[kind], ("key", "kind", "description", "owner") + KIND_REQUIRED[kind]
    )
    if "key" in raw:
        checker.name(key, "key")
    description = checker.text(raw["description"], "description") if "description" in raw else None
    owner = checker.text(raw["owner"], "owner") if "owner" in raw else None
    version = raw.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        problems.add("version", f"{version!r} must be a whole number >= 1")
    body = getattr(checker, f"{kind}_body")(raw) if fields_ok else None
    if problems.errors or body is None:
        return None, problems.errors
    definition = SegmentDefinition(
        key=key,
        kind=kind,
        description=description or "",
        owner=owner or "",
        explicit_version=version,
        body=body,
        source=label,
    )
    return definition, []


def _load(directory: Path | str) -> tuple[list[SegmentDefinition], list[str]]:
    directory = Path(directory)
    errors: list[str] = []
    if not directory.is_dir():
        return [], [f"{directory}: definitions directory does not exist"]
    known_events = load_catalog(directory, errors)
    definitions: list[SegmentDefinition] = []
    first_file: dict[str, str] = {}
    for path in definition_files(directory):
        label = str(path)
        data = _read_yaml(path, label, errors)
        if data is None:
            if path.exists() and not path.read_text(encoding="utf-8", errors="replace").strip():
                errors.append(f"{label}: file is empty")
            continue
        items = data if isinstance(data, list) else [data]
        for index, raw in enumerate(items):
            position = f"#{index + 1}" if isinstance(data, list) else "<no key>"
            definition, problems = _parse_definition(raw, label, position, known_events)
            errors.extend(problems)
            key = raw.get("key") if isinstance(raw, dict) else None
            if isinstance(key, str) and key in first_file:
                errors.append(f"{label}: segment '{key}': field 'key': key already defined in {first_file[key]}")
                continue
            if isinstance(key, str):
                first_file[key] = label
            if definition is None:
                continue
            definitions.append(definition)
    if not definitions and not errors:
        errors.append(f"{directory}: no segment definitions (*.yml) found")
    return sorted(definitions, key=lambda d: d.key), errors


def validate_definitions(directory: Path | str | None = None) -> list[str]:
    """Every problem in the definitions under directory (default: the shipped segments/); [] when valid."""
    return _load(directory if directory is not None else default_definitions_dir())[1]


def load_definitions(directory: Path | str | None = None) -> list[SegmentDefinition]:
    """The validated definitions sorted by key; raises DefinitionError listing every problem."""
    definitions, errors = _load(directory if directory is not None else default_definitions_dir())
    if errors:
        raise DefinitionError(errors)
    return definitions
