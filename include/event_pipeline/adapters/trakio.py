"""Trak.io REST calls: identify, alias, track, annotate and page_view.

Dump line: {"received_at": ISO, "call": "track" | "identify" | "alias" | "annotate" | "page_view",
            "body": {...the call's arguments...}} with
  identify:  {"distinct_id", "properties"}          alias:    {"distinct_id", "alias": id | [ids]}
  track:     {"distinct_id", "event", "properties"?, "channel"? (default web_site), "company_id"?, "time"?}
  annotate:  {"event", "properties"?, "channel"?}   (system wide: no person)
  page_view: {"distinct_id", "url", "title"?, "properties"?, "time"?}
"""

from __future__ import annotations

from typing import Any

from event_pipeline.adapters.base import (
    as_text,
    finish,
    new_record,
    parse_time,
    set_event_time,
    set_properties,
)

SOURCE = "trakio"
DEFAULT_CHANNEL = "web_site"
CALL_TO_MESSAGE_TYPE = {
    "track": "track",
    "identify": "identify",
    "alias": "alias",
    "annotate": "annotate",
    "page_view": "page",
}
REQUIRED_BY_TYPE = {
    "track": ("user_id", "event_name"),
    "identify": ("user_id",),
    "alias": ("user_id",),
    "annotate": ("event_name",),
    "page": ("user_id",),
}
KNOWN_FIELDS = frozenset({"distinct_id", "event", "properties", "channel", "company_id", "time", "alias", "url",
                          "title"})


def _alias_ids(raw: Any) -> tuple[list[str] | None, bool]:
    items = raw if isinstance(raw, list) else [raw]
    ids = [as_text(item) for item in items]
    if not items or any(i is None for i in ids):
        return None, False
    return ids, True


def records(envelope: dict[str, Any], line_bytes: int) -> list[dict[str, Any]]:
    body = envelope.get("body")
    body = body if isinstance(body, dict) else {}
    call = envelope.get("call")
    received_at = parse_time(envelope.get("received_at"))
    raw = {"call": call, "body": body}
    record = new_record(SOURCE, raw, line_bytes)
    record["received_at"] = received_at
    # an unknown call keeps its name so the unknown_message_type rule can report it
    record["message_type"] = CALL_TO_MESSAGE_TYPE.get(call, str(call))
    message_type = record["message_type"]
    properties = body.get("properties")
    if message_type != "annotate":
        record["user_id"] = as_text(body.get("distinct_id"))
    if message_type in ("track", "annotate"):
        record["event_name"] = as_text(body.get("event"))
        record["channel"] = as_text(body.get("channel")) or (DEFAULT_CHANNEL if message_type == "track" else None)
        record["company_id"] = as_text(body.get("company_id"))
    elif message_type == "page":
        record["event_name"] = "page_view"
        record["channel"] = as_text(body.get("channel")) or DEFAULT_CHANNEL
        page = {k: body[k] for k in ("url", "title") if k in body}
        properties = {**page, **properties} if isinstance(properties, dict) else (properties or page or None)
    else:
        record["event_name"] = message_type
    if message_type == "alias":
        record["alias_ids"], record["chk_alias_ok"] = _alias_ids(body.get("alias"))
    set_properties(record, properties)
    set_event_time(record, body.get("time"), received_at)
    return [finish(record, None, raw)]
