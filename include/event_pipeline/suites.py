"""Great Expectations suites kept as code: the canonical suite and one per source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import great_expectations as gx
import great_expectations.expectations as gxe

from event_pipeline.adapters import Adapter
from event_pipeline.contract import MAX_IDEMPOTENCY_KEY_CHARS, MAX_RECORD_BYTES, MESSAGE_TYPES

RESERVED_NAME_REGEX = r"^(?:\$|ss_)"


@dataclass(frozen=True)
class Rule:
    """One expectation and the quarantine reason its failing rows get."""

    reason_code: str
    expectation: gxe.Expectation

    @property
    def column(self) -> str:
        return self.expectation.column


def _meta(reason_code: str, what: str) -> dict:
    return {"reason_code": reason_code, "notes": what}


def canonical_rules(hour_start: datetime, hour_end: datetime, future_skew: timedelta,
                    late_limit: timedelta | None) -> list[Rule]:
    """Rules every record of every source must pass. Time bounds come from the run's hour, not the clock,
    so rerunning an hour gives the same verdicts."""
    rules = [
        Rule("missing_required_field", gxe.ExpectColumnValuesToNotBeNull(
            column="event_id", meta=_meta("missing_required_field", "every record has an event id"))),
        Rule("unknown_message_type", gxe.ExpectColumnValuesToBeInSet(
            column="message_type", value_set=list(MESSAGE_TYPES),
            meta=_meta("unknown_message_type", "message type is one of the canonical ones"))),
        Rule("value_not_numeric", gxe.ExpectColumnValuesToBeInSet(
            column="chk_value_ok", value_set=[True], meta=_meta("value_not_numeric", "value is numeric"))),
        Rule("property_key_invalid", gxe.ExpectColumnValuesToBeInSet(
            column="chk_property_keys_ok", value_set=[True],
            meta=_meta("property_key_invalid", "properties is an object with string keys"))),
        Rule("record_too_large", gxe.ExpectColumnValuesToBeBetween(
            column="chk_record_bytes", min_value=0, max_value=MAX_RECORD_BYTES,
            meta=_meta("record_too_large", "a record's JSON is at most 100 KB"))),
        Rule("event_time_unparseable", gxe.ExpectColumnValuesToBeNull(
            column="chk_event_time_raw", meta=_meta("event_time_unparseable", "event time parses"))),
        Rule("event_time_in_future", gxe.ExpectColumnValuesToBeBetween(
            column="event_time", max_value=hour_end + future_skew,
            meta=_meta("event_time_in_future", f"event time <= hour end + {future_skew}"))),
    ]
    if late_limit is not None:
        rules.append(Rule("event_too_late", gxe.ExpectColumnValuesToBeBetween(
            column="event_time", min_value=hour_start - late_limit,
            meta=_meta("event_too_late", f"event time >= hour start - {late_limit}"))))
    return rules


def _required(adapter: Adapter) -> list[Rule]:
    rules = []
    for message_type, fields in adapter.required.items():
        condition = None if message_type == "*" else f'message_type=="{message_type}"'
        for field in fields:
            kwargs = {"row_condition": condition, "condition_parser": "pandas"} if condition else {}
            what = f"{field} is required" + (f" for {message_type}" if condition else "")
            rules.append(Rule("missing_required_field", gxe.ExpectColumnValuesToNotBeNull(
                column=field, meta=_meta("missing_required_field", what), **kwargs)))
    return rules


def source_rules(adapter: Adapter) -> list[Rule]:
    """Rules specific to one source's contract (see ../shared/seeds and docs/sources.md)."""
    rules = _required(adapter)
    if adapter.source == "hackle":
        rules.append(Rule("property_type_invalid", gxe.ExpectColumnValuesToBeInSet(
            column="chk_property_types_ok", value_set=[True],
            meta=_meta("property_type_invalid", "Hackle property values are boolean, string or number"))))
    if adapter.source == "suprsend":
        rules += [
            Rule("reserved_event_name", gxe.ExpectColumnValuesToNotMatchRegex(
                column="event_name", regex=RESERVED_NAME_REGEX,
                meta=_meta("reserved_event_name", "event names do not start with $ or ss_"))),
            Rule("reserved_property_name", gxe.ExpectColumnValuesToBeBetween(
                column="chk_reserved_properties", min_value=0, max_value=0,
                meta=_meta("reserved_property_name", "property names do not start with $ or ss_"))),
            Rule("idempotency_key_too_long", gxe.ExpectColumnValuesToBeBetween(
                column="chk_idempotency_key_chars", min_value=0, max_value=MAX_IDEMPOTENCY_KEY_CHARS,
                meta=_meta("idempotency_key_too_long", "idempotency_key <= 255 chars after trimming"))),
            Rule("invalid_attachment", gxe.ExpectColumnValuesToBeInSet(
                column="chk_attachments_ok", value_set=[True],
                meta=_meta("invalid_attachment", "attachments are http(s) URLs"))),
        ]
    if adapter.source == "trakio":
        rules.append(Rule("invalid_alias", gxe.ExpectColumnValuesToBeInSet(
            column="chk_alias_ok", value_set=[True],
            meta=_meta("invalid_alias", "alias is a non-empty id or list of ids"))))
    return rules


def build_suite(name: str, rules: list[Rule]) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(name=name, expectations=[r.expectation for r in rules])
