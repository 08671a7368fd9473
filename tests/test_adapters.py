"""Each source adapter maps the seeds' own examples to the canonical record."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from event_pipeline.adapters import BUILTIN, adapters_for
from event_pipeline.adapters.base import parse_time
from event_pipeline.adapters.mapping import MappingError, load_mapping

REPO = Path(__file__).resolve().parents[1]


def one(source: str, envelope: dict) -> dict:
    records = BUILTIN[source].records(envelope, 100)
    assert len(records) == 1
    return records[0]


def test_hackle_purchase_with_value_and_properties():
    # hackle-track-events.txt: Hackle.event(key='purchase', value=13200, pay_method='CARD', discount_amount=800,
    # is_discount=True); Hackle.user('ae2182e0')
    record = one("hackle", {"received_at": "2026-11-20T05:10:00Z", "body": {
        "event": {"key": "purchase", "value": 13200,
                  "properties": {"pay_method": "CARD", "discount_amount": 800, "is_discount": True}},
        "user": {"id": "ae2182e0"}, "timestamp": 1795151400000}})
    assert (record["event_name"], record["user_id"], record["value"]) == ("purchase", "ae2182e0", 13200.0)
    assert record["properties"] == {"pay_method": "CARD", "discount_amount": 800, "is_discount": True}
    assert record["event_time"] == datetime(2026, 11, 20, 5, 10)
    assert record["chk_property_types_ok"] and record["chk_value_ok"]
    assert len(record["event_id"]) == 32  # derived: Hackle sends no id


def test_hackle_event_id_is_deterministic_and_content_based():
    envelope = {"received_at": "2026-11-20T05:10:00Z", "body": {"event": {"key": "purchase"}, "user": {"id": "a"}}}
    redelivered = {**envelope, "received_at": "2026-11-20T05:40:00Z"}
    other = {"received_at": "2026-11-20T05:10:00Z", "body": {"event": {"key": "purchase"}, "user": {"id": "b"}}}
    assert one("hackle", envelope)["event_id"] == one("hackle", redelivered)["event_id"]
    assert one("hackle", envelope)["event_id"] != one("hackle", other)["event_id"]


def test_hackle_rejects_nested_property_values_and_text_value():
    record = one("hackle", {"body": {"event": {"key": "k", "value": "13200", "properties": {"a": {"b": 1}}},
                                     "user": {"id": "u"}}})
    assert record["chk_property_types_ok"] is False
    assert record["chk_value_ok"] is False
    assert record["value"] is None


def test_suprsend_single_event_with_nested_properties_key_and_attachment():
    # suprsend-track-events.txt sample: product_purchased with nested properties and add_attachment()
    record = one("suprsend", {"received_at": "2026-11-20T05:00:01Z", "body": {
        "distinct_id": "0fxxx8f74-xxxx-41c5-8752-xxxcb6911fb08", "event": "product_purchased",
        "properties": {"first_name": "User", "spend_amount": "$10",
                       "nested_key_example": {"nested_key1": "some_value_1",
                                              "nested_key2": {"nested_key3": "some_value_3"}},
                       "$attachments": [{"url": "https://www.adobe.com/sample_file.pdf", "filename": "f"}]},
        "$idempotency_key": "  user147-new-comment-1687437670  ", "brand_id": "default", "$insert_id": "ins-1"}})
    assert record["event_id"] == "ins-1"
    assert record["user_id"] == "0fxxx8f74-xxxx-41c5-8752-xxxcb6911fb08"
    assert record["idempotency_key"] == "user147-new-comment-1687437670"  # trimmed
    assert record["chk_idempotency_key_chars"] == 30
    assert record["attachments"] == ["https://www.adobe.com/sample_file.pdf"]
    assert "$attachments" not in record["properties"]
    assert record["properties"]["nested_key_example"]["nested_key2"] == {"nested_key3": "some_value_3"}
    assert record["chk_reserved_properties"] == 0
    assert record["brand_id"] == "default"


def test_suprsend_bulk_line_yields_one_record_per_event():
    body = [{"distinct_id": "distinct_id1", "event": "event_name1", "properties": {"k1": "v1"}},
            {"distinct_id": "distinct_id2", "event": "event_name2", "properties": {"k2": "v2"}},
            "not an event"]
    records = BUILTIN["suprsend"].records({"received_at": "2026-11-20T05:00:00Z", "body": body}, 300)
    assert [r["user_id"] for r in records[:2]] == ["distinct_id1", "distinct_id2"]
    assert records[2].code == "not_an_object"


def test_trakio_calls_map_to_message_types():
    identify = one("trakio", {"call": "identify", "body": {"distinct_id": "some ID",
                                                          "properties": {"name": "A name", "email": "e@app.com"}}})
    alias = one("trakio", {"call": "alias", "body": {"distinct_id": "some ID", "alias": ["person's other ID"]}})
    track = one("trakio", {"call": "track", "body": {"distinct_id": "12346789", "event": "Page view",
                                                     "properties": {}, "channel": "web site",
                                                     "company_id": "acme_ltd"}})
    default_channel = one("trakio", {"call": "track", "body": {"distinct_id": "1", "event": "user signed up"}})
    annotate = one("trakio", {"call": "annotate", "body": {"event": "Deployed Update",
                                                           "properties": {"commit": "5ab430d"},
                                                           "channel": "Documentation"}})
    page = one("trakio", {"call": "page_view", "body": {"distinct_id": "1", "url": "https://x.io/a", "title": "A"}})
    assert (identify["message_type"], identify["user_id"], identify["properties"]["email"]) == (
        "identify", "some ID", "e@app.com")
    assert (alias["message_type"], alias["alias_ids"], alias["chk_alias_ok"]) == (
        "alias", ["person's other ID"], True)
    assert (track["event_name"], track["channel"], track["company_id"]) == ("Page view", "web site", "acme_ltd")
    assert default_channel["channel"] == "web_site"
    assert (annotate["message_type"], annotate["user_id"], annotate["channel"]) == (
        "annotate", None, "Documentation")
    assert (page["message_type"], page["event_name"], page["properties"]) == (
        "page", "page_view", {"url": "https://x.io/a", "title": "A"})


def test_trakio_alias_accepts_a_single_id_and_flags_a_missing_one():
    assert one("trakio", {"call": "alias", "body": {"distinct_id": "a", "alias": "b"}})["alias_ids"] == ["b"]
    assert one("trakio", {"call": "alias", "body": {"distinct_id": "a"}})["chk_alias_ok"] is False


def test_orbee_ids_come_from_the_path_and_extras_are_kept():
    record = one("orbee", {"received_at": "2026-11-20T05:00:00Z", "path": "/collect/1/1/event",
                           "body": {"action": "view", "object": "form", "vendor": "Vendor A",
                                    "product": "Product 1", "instance_id": "abc123", "lead_score": 7}})
    assert (record["account_id"], record["tracker_id"]) == ("1", "1")
    assert (record["action"], record["object"], record["vendor"], record["product"], record["instance_id"]) == (
        "view", "form", "Vendor A", "Product 1", "abc123")
    assert record["event_name"] == "view_form"
    assert record["properties"] == {"lead_score": 7}
    assert record["event_time"] == datetime(2026, 11, 20, 5)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-11-20T05:00:00Z", datetime(2026, 11, 20, 5)),
    ("2026-11-20T07:00:00+02:00", datetime(2026, 11, 20, 5)),
    (1795150800, datetime(2026, 11, 20, 5)),
    (1795150800000, datetime(2026, 11, 20, 5)),
    ("yesterday", None),
    (True, None),
])
def test_parse_time(raw, expected):
    assert parse_time(raw) == expected


def test_gharchive_mapping_ships_and_maps_a_real_event():
    adapter = adapters_for(REPO / "mappings")["gharchive"]
    line = {"id": "2489651045", "type": "IssuesEvent", "actor": {"id": 1, "login": "octocat"},
            "repo": {"id": 9, "name": "octo/repo"}, "payload": {"action": "opened"}, "public": True,
            "created_at": "2015-01-01T00:00:01Z"}
    record = adapter.records(line, 200)[0]
    assert (record["event_id"], record["user_id"], record["event_name"]) == ("2489651045", "octocat",
                                                                              "IssuesEvent.opened")
    assert record["event_time"] == datetime(2015, 1, 1, 0, 0, 1)
    assert record["properties"] == {"repo": "octo/repo", "repo_id": 9, "public": True}
    assert adapter.required == {"*": ("event_id", "user_id", "event_name", "event_time")}


def test_a_bad_mapping_names_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("source: x\nfields:\n  user: actor.login\n")
    with pytest.raises(MappingError, match=r"bad.yml: fields.user is not a canonical field"):
        load_mapping(path)


def test_docs_describe_every_canonical_column_and_reason():
    from event_pipeline.contract import CANONICAL_COLUMNS, REASONS

    doc = (REPO / "docs" / "sources.md").read_text()
    for name, _, _ in CANONICAL_COLUMNS:
        assert f"| `{name}` |" in doc, f"docs/sources.md does not describe {name}"
    for code in REASONS:
        assert f"| `{code}` |" in doc, f"docs/sources.md does not describe reason {code}"


def _parse_time_general(raw):
    """parse_time's general path for numbers, which its exact path for epoch milliseconds must match."""
    from datetime import UTC

    seconds = raw / 1000.0 if abs(raw) >= 1e11 else float(raw)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


def test_parse_time_exact_epoch_milliseconds_equal_the_general_path():
    import random

    rng = random.Random(7)
    edges = [100_000_000_000, 100_000_000_001, 1795150800000, 1795150799697, 2**31 * 1000 - 1, 2**32 * 1000 + 1,
             7_999_999_999_999]
    values = edges + [rng.randrange(100_000_000_000, 8_000_000_000_000) for _ in range(200_000)]
    assert [parse_time(v) for v in values] == [_parse_time_general(v) for v in values]
    # just outside the exact range, and text: the general path as before
    assert parse_time(8_000_000_000_000) == _parse_time_general(8_000_000_000_000)
    assert parse_time(99_999_999_999) == _parse_time_general(99_999_999_999)
    assert parse_time("2026-11-20T05:00:00.250Z") == datetime(2026, 11, 20, 5, 0, 0, 250000)
    assert parse_time("2026-11-20T05:00:00+02:00Z") is None  # an offset and a Z
