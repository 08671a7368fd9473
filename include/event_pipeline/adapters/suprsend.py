"""SuprSend `track_event` and bulk events: distinct_id, event, nested properties, idempotency key, brand.

Dump line: {"received_at": ISO, "body": EVENT | [EVENT, ...]} where a list is one bulk request and
EVENT = {"distinct_id", "event", "properties"?, "$idempotency_key"?, "brand_id"?, "$insert_id"?,
         "$time"?: epoch ms, "attachments"?: [url, ...]}; attachments added with the SDK's
add_attachment() arrive as properties["$attachments"] = [{"url", "filename"}, ...].
"""

from __future__ import annotations

from typing import Any

from event_pipeline.adapters.base import (
    AdapterError,
    as_text,
    finish,
    new_record,
    parse_time,
    reserved_property_count,
    set_event_time,
    set_properties,
)

SOURCE = "suprsend"
REQUIRED = ("user_id", "event_name")
KNOWN_FIELDS = frozenset({"distinct_id", "event", "event_name", "properties", "$idempotency_key", "idempotency_key",
                          "brand_id", "$insert_id", "$time", "attachments", "env"})


def _attachment_urls(raw: Any) -> tuple[list[str] | None, bool]:
    if raw is None:
        return None, True
    if not isinstance(raw, list):
        return None, False
    urls: list[str] = []
    ok = True
    for item in raw:
        url = item.get("url") if isinstance(item, dict) else item
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            urls.append(url)
        else:
            ok = False
    return urls, ok


def _one(event: Any, received_at, line_bytes: int) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise AdapterError("not_an_object", "a SuprSend event must be a JSON object")
    record = new_record(SOURCE, event, line_bytes)
    record["received_at"] = received_at
    record["user_id"] = as_text(event.get("distinct_id"))
    record["event_name"] = event.get("event", event.get("event_name"))
    if record["event_name"] is not None and not isinstance(record["event_name"], str):
        record["event_name"] = str(record["event_name"])
    record["brand_id"] = as_text(event.get("brand_id"))
    key = event.get("$idempotency_key", event.get("idempotency_key"))
    if key is not None:
        key = str(key).strip()
        record["idempotency_key"] = key or None
        record["chk_idempotency_key_chars"] = len(key)
    properties = event.get("properties")
    attachments = event.get("attachments")
    if isinstance(properties, dict) and "$attachments" in properties:
        properties = dict(properties)
        attachments = (attachments or []) + list(properties.pop("$attachments") or [])
    set_properties(record, properties)
    record["chk_reserved_properties"] = reserved_property_count(properties)
    record["attachments"], record["chk_attachments_ok"] = _attachment_urls(attachments)
    set_event_time(record, event.get("$time"), received_at)
    return finish(record, event.get("$insert_id"), event)


def records(envelope: dict[str, Any], line_bytes: int) -> list[dict[str, Any]]:
    body = envelope.get("body", envelope)
    received_at = parse_time(envelope.get("received_at"))
    if isinstance(body, list):
        if not body:
            raise AdapterError("empty_object", "the bulk request holds no events")
        # each event of a bulk request is its own record with its own validation outcome
        size = max(1, line_bytes // len(body))
        out = []
        for event in body:
            try:
                out.append(_one(event, received_at, size))
            except AdapterError as exc:
                out.append(exc)
        return out
    return [_one(body, received_at, line_bytes)]
