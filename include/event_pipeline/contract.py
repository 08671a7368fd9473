"""The canonical event record every source maps into, and the quarantine reason codes."""

from __future__ import annotations

from dataclasses import dataclass

MESSAGE_TYPES = ("track", "identify", "alias", "page", "annotate")

# (column, DuckDB type, description). Order is the column order of landing.events.
CANONICAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("event_id", "VARCHAR", "source's own id, or a deterministic hash of source + record content"),
    ("message_type", "VARCHAR", "track | identify | alias | page | annotate"),
    ("source", "VARCHAR", "source format that delivered the record (hackle, suprsend, trakio, orbee, ...)"),
    ("user_id", "VARCHAR", "the id the source knows the person by (Hackle user id, distinct_id, actor)"),
    ("anonymous_id", "VARCHAR", "an anonymous / device id when the source sends one"),
    ("alias_ids", "VARCHAR[]", "Trak.io alias: the other distinct ids of this person"),
    ("event_name", "VARCHAR", "event key / name; for identify and alias the message type"),
    ("value", "DOUBLE", "numeric value (Hackle value; NULL when absent)"),
    ("properties", "JSON", "event properties (identify: person traits); nested objects kept"),
    ("idempotency_key", "VARCHAR", "SuprSend idempotency key, trimmed"),
    ("brand_id", "VARCHAR", "SuprSend tenant"),
    ("company_id", "VARCHAR", "Trak.io company"),
    ("account_id", "VARCHAR", "Orbee account id (aid from the path)"),
    ("tracker_id", "VARCHAR", "Orbee tracker id (tid from the path)"),
    ("channel", "VARCHAR", "Trak.io channel, default web_site"),
    ("action", "VARCHAR", "Orbee action"),
    ("object", "VARCHAR", "Orbee object"),
    ("vendor", "VARCHAR", "Orbee vendor"),
    ("product", "VARCHAR", "Orbee product"),
    ("instance_id", "VARCHAR", "Orbee instance id: links events of one shopper across channels"),
    ("attachments", "VARCHAR[]", "SuprSend attachment URLs"),
    ("event_time", "TIMESTAMP", "when the event happened, UTC"),
    ("received_at", "TIMESTAMP", "when the collector received it, UTC"),
    ("object_key", "VARCHAR", "object storage key of the dump that delivered it"),
    ("line_number", "INTEGER", "1-based line in that dump"),
    ("record_index", "INTEGER", "0-based position inside a bulk line (0 for single events)"),
    ("payload_hash", "VARCHAR", "hash of the record's content without delivery metadata"),
    ("raw", "JSON", "the record's JSON as received"),
    ("batch_hour", "TIMESTAMP", "the dump hour [H, H+1h) whose run loaded the record, UTC"),
)
CANONICAL_COLUMN_NAMES = tuple(name for name, _, _ in CANONICAL_COLUMNS)

QUARANTINE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("batch_hour", "TIMESTAMP", "the dump hour whose run read the record"),
    ("source", "VARCHAR", "source format"),
    ("object_key", "VARCHAR", "object storage key of the dump"),
    ("line_number", "INTEGER", "1-based line in the dump"),
    ("record_index", "INTEGER", "0-based position inside a bulk line"),
    ("event_id", "VARCHAR", "event id when one could be derived"),
    ("user_id", "VARCHAR", "user id when one could be read (privacy deletes use it)"),
    ("reason_codes", "VARCHAR[]", "every rule the record broke, sorted"),
    ("message", "VARCHAR", "human explanation of the reasons"),
    ("raw_text", "VARCHAR", "the raw text of the line or record"),
)


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


# Every reason a record can be quarantined for. Codes are stable: analysts filter on them.
REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        # line-level faults, caught before GX
        Reason("corrupt_gzip", "the gzip stream is truncated or corrupt; the rest of the object is unreadable"),
        Reason("not_utf8", "the line is not valid UTF-8"),
        Reason("malformed_json", "the line is not valid JSON"),
        Reason("empty_object", "the line is an empty JSON object or array"),
        Reason("not_an_object", "the record is not a JSON object"),
        Reason("unknown_message_type", "the record's call / message type is not one the source defines"),
        # record-level rules, GX expectations
        Reason("missing_required_field", "a field the source requires is missing or empty"),
        Reason("value_not_numeric", "`value` must be a number"),
        Reason("property_type_invalid", "property values must be boolean, string or number"),
        Reason("property_key_invalid", "properties must be an object with string keys"),
        Reason("reserved_event_name", "event names must not start with `$` or `ss_` (SuprSend reserves them)"),
        Reason("reserved_property_name", "property names must not start with `$` or `ss_`"),
        Reason("idempotency_key_too_long", "idempotency_key is longer than 255 characters after trimming"),
        Reason("record_too_large", "the record's JSON is larger than 100 KB"),
        Reason("event_time_unparseable", "event time is missing or not a parseable timestamp"),
        Reason("event_time_in_future", "event time is later than the hour's end plus the allowed clock skew"),
        Reason("event_too_late", "event time is older than the late-event limit; load it as a historical import"),
        Reason("invalid_alias", "alias must be a non-empty string or list of strings"),
        Reason("invalid_attachment", "attachments must be http(s) URLs"),
    )
}

MAX_RECORD_BYTES = 100 * 1024
MAX_IDEMPOTENCY_KEY_CHARS = 255
RESERVED_NAME_PREFIXES = ("$", "ss_")


def canonical_ddl(table: str) -> str:
    cols = ",\n    ".join(f"{name} {dtype}" for name, dtype, _ in CANONICAL_COLUMNS)
    return f"create table if not exists {table} (\n    {cols}\n)"


def quarantine_ddl(table: str) -> str:
    cols = ",\n    ".join(f"{name} {dtype}" for name, dtype, _ in QUARANTINE_COLUMNS)
    return f"create table if not exists {table} (\n    {cols}\n)"
