"""SQL fragments shared by the compilers: bound parameters, comparisons, event matchers and windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from event_pipeline.segments.definitions import SegmentDefinition
from event_pipeline.segments.validation import NUMERIC_OPERATORS, is_number

SCOPE_USERS = "segment_scope_users"
FIRST_SEEN_TABLE = "segments.user_event_first_seen"


@dataclass
class CompiledSegment:
    """A per-user query with columns user_key, segment_key (NULL when not a member), metrics, details."""

    definition: SegmentDefinition
    sql: str
    params: dict
    detail_columns: list[str] = field(default_factory=list)


class Params:
    """Named DuckDB parameters ($p0, $p1, ...): every value from a definition is bound, never inlined."""

    def __init__(self, prefix: str = "p") -> None:
        self.prefix = prefix
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"${name}"


@dataclass
class Context:
    """Everything a compiler needs besides the definition: the evaluation time and relation names."""

    as_of: datetime
    params: Params = field(default_factory=Params)
    # the events the definitions look at: a subquery over the events mart (evaluate.scope_events)
    events: str = field(kw_only=True)
    users: str = SCOPE_USERS
    first_seen: str = FIRST_SEEN_TABLE

    def ago(self, seconds: int) -> str:
        return self.params(self.as_of - timedelta(seconds=seconds))

    def window(self, window: dict, column: str = "event_time") -> str:
        lower = self.ago(window["from_seconds"])
        upper = self.ago(window["to_seconds"])
        return f"{column} >= {lower} and {column} < {upper}"


def json_path(name: str) -> str:
    """`a.b` -> `$."a"."b"`: dots nest, every part is quoted so any character is allowed."""
    parts = name.split(".")
    return "$" + "".join('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in parts)


def text_of(json_column: str, name: str, bind: Params) -> str:
    return f"json_extract_string({json_column}, {bind(json_path(name))})"


def number_of(json_column: str, name: str, bind: Params) -> str:
    return f"try_cast({text_of(json_column, name, bind)} as double)"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_compare(json_column: str, name: str, compare: dict, bind: Params) -> str:
    """A property or trait compared as JSON: numbers numerically, booleans as true/false, else as text."""
    text = text_of(json_column, name, bind)
    number = f"try_cast({text} as double)"
    parts = []
    for op, operand in sorted(compare.items()):
        if op in NUMERIC_OPERATORS:
            parts.append(f"{number} {NUMERIC_OPERATORS[op]} {bind(operand)}")
        elif op in ("equals", "not_equals"):
            if is_number(operand):
                equal = f"{number} = {bind(float(operand))}"
            else:
                equal = f"{text} = {bind(_as_text(operand))}"
            parts.append(equal if op == "equals" else f"not coalesce({equal}, false)")
        elif op in ("in", "not_in"):
            if all(is_number(v) for v in operand):
                member = f"list_contains({bind([float(v) for v in operand])}::double[], {number})"
            else:
                member = f"list_contains({bind([_as_text(v) for v in operand])}::varchar[], {text})"
            parts.append(member if op == "in" else f"not coalesce({member}, false)")
        elif op == "exists":
            parts.append(f"{text} is {'not ' if operand else ''}null")
    return "(" + " and ".join(parts) + ")"


def number_compare(expression: str, compare: dict, bind: Params) -> str:
    """A numeric SQL expression against at_least / at_most / more_than / less_than / equals / in."""
    parts = []
    for op, operand in sorted(compare.items()):
        if op in NUMERIC_OPERATORS:
            parts.append(f"{expression} {NUMERIC_OPERATORS[op]} {bind(operand)}")
        elif op == "equals":
            parts.append(f"{expression} = {bind(operand)}")
        elif op == "in":
            parts.append(f"list_contains({bind([float(v) for v in operand])}::double[], {expression})")
        else:
            raise ValueError(f"operator {op} is not numeric")
    return "coalesce(" + " and ".join(parts) + ", false)"


def event_names(names: list[str], bind: Params, column: str = "event_name") -> str:
    if len(names) == 1:
        return f"{column} = {bind(names[0])}"
    return f"list_contains({bind(list(names))}::varchar[], {column})"


def matcher_sql(matcher: dict, bind: Params) -> str:
    """Predicate over an events relation: event name(s), property filters and a value filter."""
    parts = [event_names(matcher["events"], bind)]
    parts += [json_compare("properties", f["property"], f["compare"], bind) for f in matcher["where"]]
    if matcher["value"]:
        parts.append(number_compare("value", matcher["value"], bind))
    return " and ".join(parts)


def measure_sql(source: dict, bind: Params) -> str:
    """The numeric expression for `value` or `properties.<name>`."""
    if "column" in source:
        return "value"
    return number_of("properties", source["property"], bind)


def metrics_object(labels_and_expressions: list[tuple[str, str]], bind: Params) -> str:
    args = ", ".join(f"{bind(label)}, {expression}" for label, expression in labels_and_expressions)
    return f"json_object({args})"
