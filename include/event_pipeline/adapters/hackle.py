"""Hackle `track(event, user)`: event key, user identifier, optional numeric value, flat properties.

Dump line: {"received_at": ISO, "body": {"event": {"key", "value"?, "properties"?},
            "user": {"id", "properties"?}, "timestamp"?: epoch ms}}
"""

from __future__ import annotations

from typing import Any

from event_pipeline.adapters.base import (
    as_text,
    finish,
    flat_property_types_ok,
    new_record,
    parse_time,
    set_event_time,
    set_properties,
    set_value,
)

SOURCE = "hackle"
REQUIRED = ("user_id", "event_name")
KNOWN_FIELDS = frozenset({"event", "user", "timestamp"})


def records(envelope: dict[str, Any], line_bytes: int) -> list[dict[str, Any]]:
    body = envelope.get("body", envelope)
    received_at = parse_time(envelope.get("received_at"))
    event = body.get("event") if isinstance(body, dict) else None
    user = body.get("user") if isinstance(body, dict) else None
    event = event if isinstance(event, dict) else {}
    user = user if isinstance(user, dict) else {"id": user} if user is not None else {}
    record = new_record(SOURCE, body, line_bytes)
    record["received_at"] = received_at
    record["event_name"] = as_text(event.get("key"))
    record["user_id"] = as_text(user.get("id") or user.get("userId") or user.get("identifier"))
    set_value(record, event.get("value"))
    properties = event.get("properties")
    set_properties(record, properties)
    record["chk_property_types_ok"] = flat_property_types_ok(properties)
    set_event_time(record, body.get("timestamp") if isinstance(body, dict) else None, received_at)
    return [finish(record, None, body)]
