"""Segment definition validation: every bad definition names its file, segment and field before any run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_segments import AS_OF, Marts, rule, write_definitions

from event_pipeline.segments import (
    DefinitionError,
    default_definitions_dir,
    evaluate_segments,
    load_definitions,
    validate_definitions,
)

REPO = Path(__file__).resolve().parents[1]


def errors_for(tmp_path: Path, document: str) -> list[str]:
    directory = write_definitions(tmp_path / "defs", document)
    return validate_definitions(directory)


def only_error(tmp_path: Path, document: str) -> str:
    errors = errors_for(tmp_path, document)
    assert len(errors) == 1, errors
    return errors[0]


def test_shipped_definitions_validate():
    assert default_definitions_dir() == REPO / "segments"
    assert validate_definitions() == []
    keys = {d.key: d for d in load_definitions()}
    assert set(keys) >= {"purchasers_30d", "high_value_customers", "cart_abandoners", "power_users", "rfm", "lifecycle"}
    assert {"rfm.champions", "rfm.loyal", "rfm.at_risk", "rfm.hibernating"} <= set(keys["rfm"].segment_keys)
    assert all(d.owner and d.description for d in keys.values())


def test_unknown_event_names_file_segment_and_field(tmp_path):
    message = only_error(tmp_path, rule("buyers", "event: purchse\nwindow: 7d"))
    assert message == (
        f"{tmp_path}/defs/def_0.yml: segment 'buyers': field 'condition.event': "
        "unknown event 'purchse' (not in catalog.yml; did you mean 'purchase'?)"
    )


def test_unknown_event_inside_a_funnel_step(tmp_path):
    message = only_error(tmp_path, rule("f", "funnel: {steps: [view_item, add_to_krt], within: 1h}\nwindow: 7d"))
    assert "segment 'f'" in message
    assert "field 'condition.funnel.steps[1].event'" in message
    assert "unknown event 'add_to_krt'" in message


def test_without_catalog_any_event_name_is_accepted(tmp_path):
    directory = write_definitions(tmp_path / "defs", rule("x", "event: anything_goes\nwindow: 7d"), catalog=False)
    assert validate_definitions(directory) == []


@pytest.mark.parametrize(
    ("window", "field", "text"),
    [
        ("7x", "condition.window.last", "'7x' is not a duration"),
        ("{last: 0d}", "condition.window.last", "longer than zero"),
        ("{from: 7d, to: 30d}", "condition.window", "must be further back"),
        ("{last: 7d, to: 1d}", "condition.window", "either last or from/to"),
        ("{lats: 7d}", "condition.window.lats", "did you mean 'last'?"),
        ("{last: 5000d}", "condition.window.last", "longer than the maximum"),
    ],
)
def test_bad_window(tmp_path, window, field, text):
    errors = errors_for(tmp_path, rule("recent_logins", f"event: login\nwindow: {window}"))
    assert errors
    assert all(e.startswith(f"{tmp_path}/defs/def_0.yml: segment 'recent_logins': ") for e in errors)
    assert any(f"field '{field}'" in e and text in e for e in errors), errors


def test_unknown_field_in_a_condition(tmp_path):
    message = only_error(tmp_path, rule("x", "event: purchase\nwindow: 7d\nwher: {platform: ios}"))
    assert "segment 'x': field 'condition.wher': unknown field 'wher' (did you mean 'where'?)" in message


def test_typo_in_a_top_level_key(tmp_path):
    document = "key: x\nkind: rule\ndescription: d\nownr: me\ncondition: {event: login, window: 7d}\n"
    errors = errors_for(tmp_path, document)
    assert errors == [
        f"{tmp_path}/defs/def_0.yml: segment 'x': field 'ownr': unknown field 'ownr' (did you mean 'owner'?)",
        f"{tmp_path}/defs/def_0.yml: segment 'x': field 'owner': missing required field",
    ]


def test_other_bad_definitions(tmp_path):
    bad = {
        "bad_kind": "key: a\nkind: rules\ndescription: d\nowner: o\n",
        "bad_key": "key: Big-Key\nkind: rule\ndescription: d\nowner: o\ncondition: {trait: plan, equals: pro}\n",
        "bad_count": rule("c", "event: login\nwindow: 7d\ncount: {at_least: -1}"),
        "two_measures": rule("t", "event: login\nwindow: 7d\ncount: {at_least: 1}\nsum: {at_least: 1}"),
        "no_comparison": rule("n", "trait: plan"),
        "bad_rfm_edges": (
            "key: r\nkind: rfm\ndescription: d\nowner: o\nwindow: 30d\nqualifying: purchase\n"
            "scoring: {frequency: [3, 2, 5, 10]}\nsegments: [{name: all}]\n"
        ),
        "bad_lifecycle": "key: l\nkind: lifecycle\ndescription: d\nowner: o\nactive_within: 30d\nchurned_after: 7d\n",
        "twice": "key: w\nkind: rule\nkind: rule\ndescription: d\nowner: o\n",
    }
    expected = {
        "bad_kind": "segment 'a': field 'kind': 'rules' is not one of rule, rfm, lifecycle",
        "bad_key": "segment 'Big-Key': field 'key': 'Big-Key' is not a valid name",
        "bad_count": "field 'condition.count.at_least': must be a whole number >= 0",
        "two_measures": "has both count and sum",
        "no_comparison": "field 'condition': needs a comparison",
        "bad_rfm_edges": "field 'scoring.frequency': thresholds must be strictly ascending",
        "bad_lifecycle": "field 'churned_after': must be longer than active_within",
        "twice": "field 'kind' is given twice",
    }
    for name, document in bad.items():
        errors = errors_for(tmp_path / name, document)
        assert any(expected[name] in e for e in errors), (name, errors)


def test_evaluate_refuses_bad_definitions_listing_every_problem(tmp_path):
    directory = write_definitions(
        tmp_path / "defs",
        rule("one", "event: purchse\nwindow: 7d"),
        rule("two", "event: login\nwindow: 7y"),
        rule("one", "event: login\nwindow: 7d"),  # duplicate key
    )
    con = duckdb.connect()
    Marts(con)
    with pytest.raises(DefinitionError) as raised:
        evaluate_segments(con, AS_OF, directory)
    text = str(raised.value)
    assert "3 problem(s)" in text
    assert "def_0.yml: segment 'one': field 'condition.event'" in text
    assert "def_1.yml: segment 'two': field 'condition.window.last'" in text
    assert "def_2.yml: segment 'one': field 'key': key already defined in" in text
    tables = con.execute("select count(*) from duckdb_tables() where schema_name = 'segments'").fetchall()
    assert tables == [(0,)]  # nothing ran


def test_version_is_a_content_hash_plus_the_explicit_number(tmp_path):
    base = rule("v", "event: login\nwindow: {last: 7d}")
    same_content = rule("v", "window: 7d\nevent: [login]")  # different spelling, same meaning
    edited = rule("v", "event: login\nwindow: {last: 8d}")
    versions = [
        load_definitions(write_definitions(tmp_path / str(i), d))[0].version
        for i, d in enumerate(
            (base, same_content, edited, base.replace("owner: tests", "owner: someone else"), "version: 3\n" + base)
        )
    ]
    assert versions[0] == versions[1] == versions[3]  # owner / description are not membership logic
    assert versions[2] != versions[0]
    assert versions[4] == f"v3-{versions[0]}"
