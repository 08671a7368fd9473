"""Checks one definition's YAML body field by field and turns it into a normalised, hashable form."""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable
from typing import Any

DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_WINDOW_SECONDS = 3660 * 86400
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# Comparison vocabulary shared by counts, aggregates, traits, property filters and RFM rules.
NUMERIC_OPERATORS = {
    "at_least": ">=",
    "at_most": "<=",
    "more_than": ">",
    "less_than": "<",
}
EQUALITY_OPERATORS = ("equals", "not_equals")
SET_OPERATORS = ("in", "not_in")
ALL_OPERATORS = (*NUMERIC_OPERATORS, *EQUALITY_OPERATORS, *SET_OPERATORS, "exists")
COUNT_OPERATORS = (*NUMERIC_OPERATORS, "equals")
SCORE_OPERATORS = (*NUMERIC_OPERATORS, "equals", "in")

AGGREGATE_FUNCTIONS = ("sum", "min", "max", "avg")
MATCHER_FIELDS = ("event", "where", "value")
LEAF_KINDS = ("all", "any", "not", "event", "funnel", "never", "trait")

RFM_SCORE_FIELDS = ("r", "f", "m", "fm", "recency_days", "frequency", "monetary")
LIFECYCLE_STAGES = ("new", "active", "returning", "dormant", "churned")
LIFECYCLE_DEFAULTS = {"new_within": "7d", "active_within": "7d", "returning_gap": "14d", "churned_after": "30d"}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def tidy_number(value: int | float) -> int | float:
    """1.0 and 1 normalise to the same value so they hash the same."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def format_seconds(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe_window(window: dict | None) -> str:
    if window is None:
        return "ever"
    if window["to_seconds"] == 0:
        return f"last {format_seconds(window['from_seconds'])}"
    return f"{format_seconds(window['from_seconds'])} to {format_seconds(window['to_seconds'])} ago"


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class Problems:
    """Collects error messages naming the file, the segment and the field."""

    def __init__(self, file: str, segment: str) -> None:
        self.file = file
        self.segment = segment
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(f"{self.file}: segment '{self.segment}': field '{path}': {message}")


class BodyValidator:
    """Validates one definition; every check records a problem and returns None instead of raising."""

    def __init__(self, problems: Problems, known_events: set[str] | None) -> None:
        self.problems = problems
        self.known_events = known_events

    def error(self, path: str, message: str) -> None:
        self.problems.add(path, message)

    # ---- generic shapes -------------------------------------------------------------------------

    def fields(self, mapping: Any, path: str, allowed: Iterable[str], required: Iterable[str] = ()) -> bool:
        """Reports unknown and missing fields; True when mapping is a dict holding every required field."""
        if not isinstance(mapping, dict):
            self.error(path, f"must be a mapping, got {type(mapping).__name__}")
            return False
        allowed = list(allowed)
        ok = True
        for name in mapping:
            if name not in allowed:
                hint = difflib.get_close_matches(str(name), allowed, n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
                self.error(join(path, str(name)), f"unknown field '{name}'{suggestion}")
        for name in required:
            if name not in mapping:
                ok = False
                self.error(join(path, name), "missing required field")
        return ok

    def text(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.error(path, "must be a non-empty string")
            return None
        return value.strip()

    def name(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not NAME_PATTERN.match(value):
            self.error(path, f"{value!r} is not a valid name (lower case letters, digits, _; starts with a letter)")
            return None
        return value

    def duration(self, value: Any, path: str) -> int | None:
        match = DURATION_PATTERN.match(value) if isinstance(value, str) else None
        if match is None:
            self.error(path, f"{value!r} is not a duration like 30m, 24h, 7d or 2w")
            return None
        seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
        if seconds <= 0:
            self.error(path, f"duration {value!r} must be longer than zero")
            return None
        if seconds > MAX_WINDOW_SECONDS:
            self.error(path, f"duration {value!r} is longer than the maximum of {MAX_WINDOW_SECONDS // 86400}d")
            return None
        return seconds

    def window(self, value: Any, path: str) -> dict | None:
        """`7d` or {last: 7d} (the last 7 days) or {from: 30d, to: 7d} (between 30 and 7 days ago)."""
        if isinstance(value, str):
            value = {"last": value}
        if not isinstance(value, dict):
            self.error(path, "must be a duration such as 7d, {last: 7d} or {from: 30d, to: 7d}")
            return None
        if not self.fields(value, path, ("last", "from", "to")):
            return None
        if "last" in value:
            if "from" in value or "to" in value:
                self.error(path, "use either last or from/to, not both")
                return None
            seconds = self.duration(value["last"], join(path, "last"))
            return None if seconds is None else {"from_seconds": seconds, "to_seconds": 0}
        if "from" not in value:
            self.error(join(path, "from"), "missing: a window needs last, or from (and optionally to)")
            return None
        start = self.duration(value["from"], join(path, "from"))
        end = self.duration(value["to"], join(path, "to")) if "to" in value else 0
        if start is None or end is None:
            return None
        if end >= start:
            self.error(path, f"from ({value['from']}) must be further back than to ({value.get('to')})")
            return None
        return {"from_seconds": start, "to_seconds": end}

    def comparisons(
        self, mapping: dict, path: str, operators: Iterable[str], integer: bool = False, numeric: bool = False
    ) -> dict | None:
        """The operators present in mapping, checked for type; None if any is wrong or none is given."""
        operators = tuple(operators)
        result: dict[str, Any] = {}
        ok = True
        for op in operators:
            if op not in mapping:
                continue
            checked = self.operand(op, mapping[op], join(path, op), integer=integer, numeric=numeric)
            if checked is None:
                ok = False
            else:
                result[op] = checked
        if ok and not result:
            self.error(path, f"needs a comparison: one of {', '.join(operators)}")
            return None
        return result if ok else None

    def operand(self, op: str, value: Any, path: str, integer: bool, numeric: bool) -> Any:
        if op == "exists":
            if not isinstance(value, bool):
                self.error(path, "must be true or false")
                return None
            return value
        if op in SET_OPERATORS:
            if not isinstance(value, list) or not value or not all(is_scalar(v) for v in value):
                self.error(path, "must be a non-empty list of strings or numbers")
                return None
            if numeric and not all(is_number(v) for v in value):
                self.error(path, "must be a list of numbers")
                return None
            return [tidy_number(v) if is_number(v) else v for v in value]
        if op in NUMERIC_OPERATORS or numeric:
            if not is_number(value):
                self.error(path, f"must be a number, got {value!r}")
                return None
            if integer and (not float(value).is_integer() or value < 0):
                self.error(path, f"must be a whole number >= 0, got {value!r}")
                return None
            return tidy_number(value)
        if not is_scalar(value):
            self.error(path, f"must be a string, number or boolean, got {value!r}")
            return None
        return tidy_number(value) if is_number(value) else value

    # ---- events -------------------------------------------------------------------------------------

    def event_names(self, value: Any, path: str) -> list[str] | None:
        names = value if isinstance(value, list) else [value]
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            self.error(path, "must be an event name or a non-empty list of event names")
            return None
        ok = True
        for name in names:
            if self.known_events is not None and name not in self.known_events:
                ok = False
                hint = difflib.get_close_matches(name, sorted(self.known_events), n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.error(path, f"unknown event '{name}' (not in catalog.yml{suggestion})")
        return sorted(set(names)) if ok else None

    def where(self, value: Any, path: str) -> list[dict] | None:
        if not isinstance(value, dict) or not value:
            self.error(path, "must be a mapping of property name to a value or a comparison")
            return None
        filters = []
        ok = True
        for prop, condition in value.items():
            prop_path = join(path, str(prop))
            if not isinstance(prop, str) or not prop.strip():
                self.error(prop_path, "property names must be non-empty strings")
                ok = False
                continue
            if is_scalar(condition):
                condition = {"equals": condition}
            if not self.fields(condition, prop_path, ALL_OPERATORS):
                ok = False
                continue
            compare = self.comparisons(condition, prop_path, ALL_OPERATORS)
            if compare is None:
                ok = False
                continue
            filters.append({"property": prop, "compare": compare})
        return sorted(filters, key=lambda f: f["property"]) if ok else None

    def value_filter(self, value: Any, path: str) -> dict | None:
        if not self.fields(value, path, NUMERIC_OPERATORS):
            return None
        return self.comparisons(value, path, NUMERIC_OPERATORS)

    def matcher(self, value: Any, path: str) -> dict | None:
        """An event name, a list of names, or {event, where, value}."""
        if isinstance(value, str | list):
            value = {"event": value}
        if not self.fields(value, path, MATCHER_FIELDS, required=("event",)):
            return None
        return self.matcher_fields(value, path)

    def matcher_fields(self, value: dict, path: str) -> dict | None:
        events = self.event_names(value.get("event"), join(path, "event"))
        where = self.where(value["where"], join(path, "where")) if "where" in value else []
        value_filter = self.value_filter(value["value"], join(path, "value")) if "value" in value else {}
        if events is None or where is None or value_filter is None:
            return None
        return {"events": events, "where": where, "value": value_filter}

    def measure_source(self, value: Any, path: str) -> dict | None:
        """`value` (the event's value column) or `properties.NAME` (a numeric property)."""
        if value == "value":
            return {"column": "value"}
        if isinstance(value, str) and value.startswith("properties.") and len(value) > len("properties."):
            return {"property": value[len("properties.") :]}
        self.error(path, f"{value!r} must be `value` or `properties.<name>`")
        return None

    # ---- rule conditions -------------------------------------------------------------------------------

    def condition(self, value: Any, path: str) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, "must be a mapping with one of: " + ", ".join(LEAF_KINDS))
            return None
        present = [kind for kind in LEAF_KINDS if kind in value]
        if len(present) > 1:
            self.error(path, f"has both {present[0]} and {present[1]}; nest them under all/any instead")
            return None
        if not present:
            allowed = [*LEAF_KINDS, "label", "window", "where", "count", *AGGREGATE_FUNCTIONS]
            self.fields(value, path, allowed)
            self.error(path, "must have one of: " + ", ".join(LEAF_KINDS))
            return None
        kind = present[0]
        if kind in ("all", "any"):
            return self.combination(kind, value, path)
        if kind == "not":
            if not self.fields(value, path, ("not",)):
                return None
            inner = self.condition(value["not"], join(path, "not"))
            return None if inner is None else {"type": "not", "item": inner}
        return getattr(self, f"{kind}_condition")(value, path)

    def combination(self, kind: str, value: dict, path: str) -> dict | None:
        if not self.fields(value, path, (kind,)):
            return None
        items = value[kind]
        if not isinstance(items, list) or not items:
            self.error(join(path, kind), "must be a non-empty list of conditions")
            return None
        normalised = [self.condition(item, f"{join(path, kind)}[{i}]") for i, item in enumerate(items)]
        if any(item is None for item in normalised):
            return None
        return {"type": kind, "items": normalised}

    def event_condition(self, value: dict, path: str) -> dict | None:
        allowed = (*MATCHER_FIELDS, "window", "count", *AGGREGATE_FUNCTIONS, "label")
        if not self.fields(value, path, allowed, required=("event", "window")):
            return None
        matcher = self.matcher_fields(value, path)
        window = self.window(value["window"], join(path, "window"))
        label = self.label(value, path)
        measures = [m for m in ("count", *AGGREGATE_FUNCTIONS) if m in value]
        if len(measures) > 1:
            self.error(path, f"has both {measures[0]} and {measures[1]}; use one measure per condition")
            return None
        measure = measures[0] if measures else "count"
        spec = value.get(measure, {"at_least": 1})
        measure_path = join(path, measure)
        if measure == "count":
            if not self.fields(spec, measure_path, COUNT_OPERATORS):
                return None
            compare = self.comparisons(spec, measure_path, COUNT_OPERATORS, integer=True)
            source = None
        else:
            if not self.fields(spec, measure_path, ("of", *NUMERIC_OPERATORS, "equals")):
                return None
            source = self.measure_source(spec.get("of", "value"), join(measure_path, "of"))
            compare = self.comparisons(spec, measure_path, (*NUMERIC_OPERATORS, "equals"), numeric=True)
        if None in (matcher, window, compare, label) or (measure != "count" and source is None):
            return None
        result = {"type": "count" if measure == "count" else "aggregate", "match": matcher, "window": window}
        if measure != "count":
            result.update(function=measure, of=source)
        result.update(compare=compare, label=label)
        return result

    def funnel_condition(self, value: dict, path: str) -> dict | None:
        if not self.fields(value, path, ("funnel", "window", "label"), required=("window",)):
            return None
        funnel = value["funnel"]
        funnel_path = join(path, "funnel")
        if not self.fields(funnel, funnel_path, ("steps", "within", "not_followed_by"), ("steps", "within")):
            return None
        steps_value = funnel["steps"]
        negated = "not_followed_by" in funnel
        minimum = 1 if negated else 2
        if not isinstance(steps_value, list) or len(steps_value) < minimum:
            self.error(join(funnel_path, "steps"), f"must be a list of at least {minimum} steps")
            return None
        steps = [self.matcher(step, f"{join(funnel_path, 'steps')}[{i}]") for i, step in enumerate(steps_value)]
        within = self.duration(funnel["within"], join(funnel_path, "within"))
        absent = self.matcher(funnel["not_followed_by"], join(funnel_path, "not_followed_by")) if negated else None
        window = self.window(value["window"], join(path, "window"))
        label = self.label(value, path)
        if any(s is None for s in steps) or None in (within, window, label) or (negated and absent is None):
            return None
        return {
            "type": "funnel",
            "steps": steps,
            "within_seconds": within,
            "not_followed_by": absent,
            "window": window,
            "label": label,
        }

    def never_condition(self, value: dict, path: str) -> dict | None:
        if not self.fields(value, path, ("never", "window", "label")):
            return None
        matcher = self.matcher(value["never"], join(path, "never"))
        window = self.window(value["window"], join(path, "window")) if "window" in value else None
        label = self.label(value, path)
        if matcher is None or label is None or ("window" in value and window is None):
            return None
        if window is None and (matcher["where"] or matcher["value"]):
            self.error(join(path, "never"), "without a window only event names are allowed; add a window")
            return None
        return {"type": "never", "match": matcher, "window": window, "label": label}

    def trait_condition(self, value: dict, path: str) -> dict | None:
        if not self.fields(value, path, ("trait", *ALL_OPERATORS, "label")):
            return None
        trait = self.text(value["trait"], join(path, "trait"))
        compare = self.comparisons(value, path, ALL_OPERATORS)
        label = self.label(value, path)
        if None in (trait, compare, label):
            return None
        return {"type": "trait", "trait": trait, "compare": compare, "label": label}

    def label(self, value: dict, path: str) -> str | None:
        """Explicit labels are kept; "" marks one to generate once the whole tree is known."""
        if "label" not in value:
            return ""
        label = value["label"]
        if not isinstance(label, str) or not re.match(r"^[A-Za-z0-9_]+$", label):
            self.error(join(path, "label"), f"{label!r} must use letters, digits and _ only")
            return None
        return label

    # ---- kinds --------------------------------------------------------------------------------------

    def rule_body(self, body: dict) -> dict | None:
        condition = self.condition(body.get("condition"), "condition")
        if condition is None:
            return None
        taken: set[str] = set()
        for leaf in leaves(condition):
            if leaf["label"]:
                if leaf["label"] in taken:
                    self.error("condition", f"label '{leaf['label']}' is used twice")
                    return None
                taken.add(leaf["label"])
        for leaf in leaves(condition):
            if not leaf["label"]:
                base = auto_label(leaf)
                label, n = base, 1
                while label in taken:
                    n += 1
                    label = f"{base}_{n}"
                leaf["label"] = label
                taken.add(label)
        return {"condition": condition}

    def rfm_body(self, body: dict) -> dict | None:
        window = self.window(body.get("window"), "window")
        qualifying = self.matcher(body.get("qualifying"), "qualifying")
        frequency = self.rfm_frequency(body.get("frequency", {"count": "events"}))
        monetary = self.rfm_monetary(body.get("monetary", {"sum": "value"}))
        scoring = self.rfm_scoring(body.get("scoring", {}))
        segments = self.rfm_segments(body.get("segments"))
        if None in (window, qualifying, frequency, monetary, scoring, segments):
            return None
        return {
            "window": window,
            "qualifying": qualifying,
            "frequency": frequency,
            "monetary": monetary,
            "scoring": scoring,
            "segments": segments,
        }

    def rfm_frequency(self, value: Any) -> dict | None:
        if not self.fields(value, "frequency", ("count", "count_distinct")):
            return None
        if len(value) != 1:
            self.error("frequency", "needs exactly one of count: events or count_distinct: properties.<name>")
            return None
        if "count" in value:
            if value["count"] != "events":
                self.error("frequency.count", "must be `events`")
                return None
            return {"distinct": None}
        source = self.measure_source(value["count_distinct"], "frequency.count_distinct")
        if source is None:
            return None
        if "property" not in source:
            self.error("frequency.count_distinct", "must be `properties.<name>`, for example properties.order_id")
            return None
        return {"distinct": source["property"]}

    def rfm_monetary(self, value: Any) -> dict | None:
        if not self.fields(value, "monetary", ("sum",), required=("sum",)):
            return None
        source = self.measure_source(value["sum"], "monetary.sum")
        return None if source is None else {"of": source}

    def rfm_scoring(self, value: Any) -> dict | None:
        if not self.fields(value, "scoring", ("recency", "frequency", "monetary")):
            return None
        result = {}
        for dimension in ("recency", "frequency", "monetary"):
            spec = value.get(dimension, "quantile")
            path = join("scoring", dimension)
            if spec == "quantile":
                result[dimension] = {"method": "quantile"}
                continue
            if not isinstance(spec, list) or len(spec) != 4:
                self.error(path, "must be `quantile` or a list of 4 ascending thresholds")
                return None
            if dimension == "recency":
                edges = [self.duration(edge, f"{path}[{i}]") for i, edge in enumerate(spec)]
            else:
                edges = [self.operand("at_least", edge, f"{path}[{i}]", False, True) for i, edge in enumerate(spec)]
            if any(edge is None for edge in edges):
                return None
            if any(a >= b for a, b in itertools.pairwise(edges)):
                self.error(path, "thresholds must be strictly ascending")
                return None
            result[dimension] = {"method": "fixed", "edges": edges}
        return result

    def rfm_segments(self, value: Any) -> list[dict] | None:
        if not isinstance(value, list) or not value:
            self.error("segments", "must be a non-empty list of {name, description, when}")
            return None
        result = []
        seen: set[str] = set()
        for i, item in enumerate(value):
            path = f"segments[{i}]"
            if not self.fields(item, path, ("name", "description", "when"), required=("name",)):
                return None
            name = self.name(item["name"], join(path, "name"))
            description = self.text(item["description"], join(path, "description")) if "description" in item else ""
            when = self.rfm_when(item.get("when", {}), join(path, "when"))
            if None in (name, description, when):
                return None
            if name in seen:
                self.error(join(path, "name"), f"segment name '{name}' is used twice")
                return None
            seen.add(name)
            result.append({"name": name, "description": description, "when": when})
        return result

    def rfm_when(self, value: Any, path: str) -> dict | None:
        if not self.fields(value, path, RFM_SCORE_FIELDS):
            return None
        result = {}
        for field in RFM_SCORE_FIELDS:
            if field not in value:
                continue
            field_path = join(path, field)
            spec = value[field]
            if is_number(spec):
                spec = {"equals": spec}
            if not self.fields(spec, field_path, SCORE_OPERATORS):
                return None
            compare = self.comparisons(spec, field_path, SCORE_OPERATORS, numeric=True)
            if compare is None:
                return None
            result[field] = compare
        return result

    def lifecycle_body(self, body: dict) -> dict | None:
        result: dict[str, Any] = {}
        for field, default in LIFECYCLE_DEFAULTS.items():
            seconds = self.duration(body.get(field, default), field)
            if seconds is None:
                return None
            result[f"{field}_seconds"] = seconds
        if result["active_within_seconds"] >= result["churned_after_seconds"]:
            self.error("churned_after", "must be longer than active_within")
            return None
        activity = self.matcher(body["activity"], "activity") if "activity" in body else None
        if "activity" in body and activity is None:
            return None
        result["activity"] = activity
        return result


KIND_FIELDS = {
    "rule": ("condition",),
    "rfm": ("window", "qualifying", "frequency", "monetary", "scoring", "segments"),
    "lifecycle": ("new_within", "active_within", "returning_gap", "churned_after", "activity"),
}
KIND_REQUIRED = {"rule": ("condition",), "rfm": ("window", "qualifying", "segments"), "lifecycle": ()}


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def leaves(condition: dict) -> list[dict]:
    """The leaf conditions of a rule tree, depth first, in file order."""
    if condition["type"] in ("all", "any"):
        return [leaf for item in condition["items"] for leaf in leaves(item)]
    if condition["type"] == "not":
        return leaves(condition["item"])
    return [condition]


def auto_label(leaf: dict) -> str:
    kind = leaf["type"]
    if kind == "trait":
        return snake(f"trait_{leaf['trait']}")
    if kind == "funnel":
        names = ["_".join(step["events"]) for step in leaf["steps"]]
        if leaf["not_followed_by"]:
            names.append("not_" + "_".join(leaf["not_followed_by"]["events"]))
        return snake(f"funnel_{'_'.join(names)}_{describe_window(leaf['window'])}")
    events = "_".join(leaf["match"]["events"])
    if kind == "aggregate":
        source = leaf["of"].get("property", "value")
        return snake(f"{leaf['function']}_{source}_{events}_{describe_window(leaf['window'])}")
    if kind == "never" and leaf["window"] is None:
        return snake(f"{events}_first_seen")
    return snake(f"{events}_count_{describe_window(leaf['window'])}")
