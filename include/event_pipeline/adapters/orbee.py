"""Orbee `/collect/{aid}/{tid}/event`: account and tracker ids from the path, the body's required fields.

Dump line: {"received_at": ISO, "path": "/collect/{aid}/{tid}/event",
            "body": {"action", "object", "vendor", "product", "instance_id", ...any extra fields}}
Extra body fields are kept in properties; `timestamp`, `anonymous_id` and `user_id` extras are mapped.
"""

from __future__ import annotations

import re
from typing import Any

from event_pipeline.adapters.base import (
    as_text,
    finish,
    new_record,
    parse_time,
    set_event_time,
    set_properties,
)

SOURCE = "orbee"
REQUIRED = ("account_id", "tracker_id", "action", "object", "vendor", "product", "instance_id")
PATH_PATTERN = re.compile(r"^/collect/(?P<aid>[^/]+)/(?P<tid>[^/]+)/event/?$")
MAPPED = {"action", "object", "vendor", "product", "instance_id", "timestamp", "anonymous_id", "user_id"}


def records(envelope: dict[str, Any], line_bytes: int) -> list[dict[str, Any]]:
    body = envelope.get("body")
    body = body if isinstance(body, dict) else {}
    path = envelope.get("path")
    received_at = parse_time(envelope.get("received_at"))
    raw = {"path": path, "body": body}
    record = new_record(SOURCE, raw, line_bytes)
    record["received_at"] = received_at
    match = PATH_PATTERN.match(path) if isinstance(path, str) else None
    if match:
        record["account_id"], record["tracker_id"] = match["aid"], match["tid"]
    for field in ("action", "object", "vendor", "product", "instance_id"):
        record[field] = as_text(body.get(field))
    record["user_id"] = as_text(body.get("user_id"))
    record["anonymous_id"] = as_text(body.get("anonymous_id"))
    if record["action"] and record["object"]:
        record["event_name"] = f"{record['action']}_{record['object']}"
    extras = {k: v for k, v in body.items() if k not in MAPPED}
    set_properties(record, extras or None)
    set_event_time(record, body.get("timestamp"), received_at)
    return [finish(record, None, raw)]
