"""Shared pieces of the source adapters: the record builder, timestamps, hashing and checks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from event_pipeline.contract import RESERVED_NAME_PREFIXES

# Derived columns the validation suites check. Adapters fill them; they never reach the warehouse.
CHECK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("chk_value_ok", "BOOLEAN"),
    ("chk_property_keys_ok", "BOOLEAN"),
    ("chk_property_types_ok", "BOOLEAN"),
    ("chk_reserved_properties", "INTEGER"),
    ("chk_idempotency_key_chars", "INTEGER"),
    ("chk_record_bytes", "INTEGER"),
    ("chk_attachments_ok", "BOOLEAN"),
    ("chk_alias_ok", "BOOLEAN"),
    ("chk_event_time_raw", "VARCHAR"),
)


class AdapterError(ValueError):
    """A record whose structure no rule can even look at (e.g. a bulk body that is not a list)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# isinstance with a tuple is cheaper than with an X | Y union on Python 3.11; these run once or more per record.
_NUMBER = (int, float)
_NOT_TEXT = (dict, list, bool)
_FLAT_VALUE = (bool, str, int, float)


_EPOCH = datetime(1970, 1, 1)
# Epoch milliseconds in [1e11, 8e12) (1973 to 2223) take the exact path below: the float division of the
# general path is then within 0.5 microseconds of the exact value and rounds back to it, so both paths give
# the same datetime (tests/test_adapters.py compares them), and this one costs a quarter as much.
_EXACT_MS_RANGE = (100_000_000_000, 8_000_000_000_000)


def parse_time(raw: Any) -> datetime | None:
    """ISO-8601 text or epoch seconds / milliseconds -> naive UTC datetime; None if unparseable."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        if raw.__class__ is int and _EXACT_MS_RANGE[0] <= raw < _EXACT_MS_RANGE[1]:
            return _EPOCH + timedelta(milliseconds=raw)  # SDK timestamps: epoch ms (once a line, or twice)
        if isinstance(raw, _NUMBER):
            seconds = raw / 1000.0 if abs(raw) >= 1e11 else float(raw)
            return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return None
            if text.endswith(("Z", "z")):
                parsed = datetime.fromisoformat(text[:-1])
                if parsed.tzinfo is None:  # "...Z" is UTC: the naive time as written
                    return parsed
                text = text[:-1] + "+00:00"  # an offset and a Z: invalid below, as it always was
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(UTC).replace(tzinfo=None)
            return parsed
    except (ValueError, OverflowError, OSError):
        return None
    return None


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def as_text(raw: Any) -> str | None:
    """Identifiers may arrive as numbers; keep them as text. Empty strings count as missing."""
    if raw.__class__ is str:  # the common case, without the str() call
        return raw.strip() or None
    if raw is None or isinstance(raw, _NOT_TEXT):
        return None
    text = str(raw).strip()
    return text or None


def is_number(raw: Any) -> bool:
    return isinstance(raw, _NUMBER) and not isinstance(raw, bool)


def flat_property_types_ok(properties: Any) -> bool:
    """Hackle: every property value is a boolean, string or number."""
    if not isinstance(properties, dict):
        return properties is None
    return all(isinstance(v, _FLAT_VALUE) for v in properties.values())


def reserved_property_count(properties: Any) -> int:
    if not isinstance(properties, dict):
        return 0
    return sum(1 for k in properties if str(k).startswith(RESERVED_NAME_PREFIXES))


_RECORD_TEMPLATE: dict[str, Any] = {
    "source": None,
    "message_type": "track",
    "event_id": None,
    "user_id": None,
    "anonymous_id": None,
    "alias_ids": None,
    "event_name": None,
    "value": None,
    "properties": None,
    "idempotency_key": None,
    "brand_id": None,
    "company_id": None,
    "account_id": None,
    "tracker_id": None,
    "channel": None,
    "action": None,
    "object": None,
    "vendor": None,
    "product": None,
    "instance_id": None,
    "attachments": None,
    "event_time": None,
    "received_at": None,
    "raw": None,
    "chk_value_ok": True,
    "chk_property_keys_ok": True,
    "chk_property_types_ok": True,
    "chk_reserved_properties": 0,
    "chk_idempotency_key_chars": 0,
    "chk_record_bytes": 0,
    "chk_attachments_ok": True,
    "chk_alias_ok": True,
    "chk_event_time_raw": None,
}


def new_record(source: str, raw_record: Any, raw_bytes: int) -> dict[str, Any]:
    """A record with every canonical and check field present (None until an adapter sets it)."""
    record = _RECORD_TEMPLATE.copy()  # cheaper than building the 33-key literal for every record
    record["source"] = source
    record["raw"] = raw_record
    record["chk_record_bytes"] = raw_bytes
    return record


def set_properties(record: dict[str, Any], properties: Any) -> None:
    """Properties must be a JSON object; anything else is kept raw and flagged."""
    if properties is None:
        record["properties"] = None
        return
    record["properties"] = properties
    record["chk_property_keys_ok"] = isinstance(properties, dict) and all(
        isinstance(k, str) and k for k in properties
    )


def set_value(record: dict[str, Any], raw_value: Any) -> None:
    if raw_value is None:
        return
    if is_number(raw_value):
        record["value"] = float(raw_value)
    else:
        record["chk_value_ok"] = False


def set_event_time(record: dict[str, Any], raw_time: Any, fallback: datetime | None) -> None:
    """Event time from the source's own field, else the collector's receive time."""
    if raw_time is None:
        record["event_time"] = fallback
        if fallback is None:
            record["chk_event_time_raw"] = "<missing>"
        return
    record["event_time"] = parse_time(raw_time)
    if record["event_time"] is None:
        record["chk_event_time_raw"] = str(raw_time)[:100]


def finish(record: dict[str, Any], own_id: Any, content: Any) -> dict[str, Any]:
    """Set event_id (the source's own, else derived) and payload_hash from the record's content.

    The content's sorted-key JSON is kept as `raw_json` when the content is the record's raw value (every
    adapter's case), so the loader does not serialise the same object a second time for `raw`."""
    serialized = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(record["source"].encode() + b"\x1f" + serialized)
    record["payload_hash"] = digest.hexdigest()[:32]
    if content is record["raw"]:
        record["raw_json"] = serialized.decode()
    record["event_id"] = as_text(own_id) or record["payload_hash"]
    return record
