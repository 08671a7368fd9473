"""Validate one hour's staged records with Great Expectations and split them into events and quarantine."""

from __future__ import annotations

import logging
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import great_expectations as gx
import numpy as np
import pandas as pd
import pyarrow as pa
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.execution_engine import pandas_execution_engine as _gx_pandas_engine

from event_pipeline.adapters import CHECK_COLUMNS, Adapter
from event_pipeline.contract import CANONICAL_COLUMN_NAMES, REASONS
from event_pipeline.privacy import drop_suppressed
from event_pipeline.suites import Rule, build_suite, canonical_rules, source_rules

log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

# GX fingerprints every pandas batch under 1 GB by hashing all of its values (pandas_data_fingerprint, a batch
# marker nothing here reads): 8% of validating a 1M-event hour, for a chunk that is validated once and dropped.
# The threshold is read at each batch, so 0 skips the hash; the results are the same.
if hasattr(_gx_pandas_engine, "HASH_THRESHOLD"):
    _gx_pandas_engine.HASH_THRESHOLD = 0

# Columns the suites look at; GX gets only these, which keeps the pandas frames small.
CHECKED_COLUMNS = (
    "row_id", "source", "message_type", "event_id", "user_id", "event_name", "account_id", "tracker_id",
    "action", "object", "vendor", "product", "instance_id", "event_time",
    *(name for name, _ in CHECK_COLUMNS),
)


class BatchCheckError(RuntimeError):
    """A whole batch looks wrong (too many invalid records, a silent source): fail the run loudly."""


@dataclass
class ExpectationTally:
    suite: str
    expectation: str
    column: str
    reason_code: str
    notes: str
    element_count: int = 0
    unexpected_count: int = 0


@dataclass
class ValidationOutcome:
    records: int = 0
    valid: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    tallies: list[ExpectationTally] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"records": self.records, "valid": self.valid, "quarantined": self.quarantined,
                "reasons": self.reasons}


class SuiteRunner:
    """GX context with one dataframe asset and suite per (suite name); results tallied across chunks."""

    def __init__(self):
        self.context = gx.get_context(mode="ephemeral")
        # per-metric progress bars flood task logs; the loader logs its own progress per chunk
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.datasource = self.context.data_sources.add_pandas("staged_records")
        self.definitions: dict[str, gx.ValidationDefinition] = {}
        self.tallies: dict[tuple[str, int], ExpectationTally] = {}

    def definition(self, name: str, rules: list[Rule]) -> gx.ValidationDefinition:
        if name not in self.definitions:
            asset = self.datasource.add_dataframe_asset(name)
            batch_definition = asset.add_batch_definition_whole_dataframe(name)
            suite = self.context.suites.add(build_suite(name, rules))
            self.definitions[name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
            )
        return self.definitions[name]

    def failing_rows(self, name: str, rules: list[Rule], frame) -> dict[int, set[str]]:
        """row_id -> reason notes of every expectation the row fails (GX COMPLETE: the full row set)."""
        result = self.definition(name, rules).run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row_id"],
                           "return_unexpected_index_query": False},
        )
        failures: dict[int, set[str]] = defaultdict(set)
        for position, item in enumerate(result.results):
            config = item.expectation_config
            if item.exception_info and item.exception_info.get("raised_exception"):
                raise RuntimeError(f"GX expectation {config.type} on {config.kwargs.get('column')} failed to "
                                   f"run: {item.exception_info.get('exception_message')}")
            meta = config.meta or {}
            tally = self.tallies.setdefault((name, position), ExpectationTally(
                suite=name, expectation=config.type, column=config.kwargs.get("column"),
                reason_code=meta.get("reason_code"), notes=meta.get("notes", "")))
            tally.element_count += int(item.result.get("element_count") or 0)
            unexpected = int(item.result.get("unexpected_count") or 0)
            tally.unexpected_count += unexpected
            rows = item.result.get("unexpected_index_list") or []
            if len(rows) != unexpected:
                raise RuntimeError(f"GX returned {len(rows)} of {unexpected} failing rows for {config.type}; "
                                   "refusing to quarantine a partial set")
            label = f"{meta['reason_code']}|{meta.get('notes', '')}"
            for row in rows:
                failures[int(row["row_id"])].add(label)
        return failures


def _failures_table(failures: dict[int, set[str]]) -> pa.Table:
    row_ids, codes, messages = [], [], []
    for row_id, labels in failures.items():
        pairs = sorted(label.split("|", 1) for label in labels)
        row_ids.append(row_id)
        codes.append(sorted({code for code, _ in pairs}))
        messages.append("; ".join(note for _, note in pairs))
    return pa.table({"row_id": pa.array(row_ids, pa.int64()), "reason_codes": pa.array(codes, pa.list_(pa.string())),
                     "message": pa.array(messages, pa.string())})


def _vectorisable_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """GX checks a between-rule with vectorised pandas only on int64 / float64 and datetime64[ns] columns; DuckDB
    hands over int32 and datetime64[us], which GX checks with one Python call per row (most of validation's time
    at 1M rows). Same values, so the same verdicts; times outside the ns range keep the per-row path."""
    for name in frame.columns:
        dtype = frame[name].dtype
        if not isinstance(dtype, np.dtype) or dtype in (np.int64, np.float64):
            continue
        if dtype.kind in "iu":
            frame[name] = frame[name].astype(np.int64)
        elif dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
            low, high = frame[name].min(), frame[name].max()
            if pd.isna(low) or (low >= pd.Timestamp.min and high <= pd.Timestamp.max):
                frame[name] = frame[name].astype("datetime64[ns]")
    return frame


def _line_fault_failures(con, hour: datetime, lo: int, hi: int) -> dict[int, set[str]]:
    rows = con.execute(
        "select row_id, line_fault from landing.staged_records "
        "where batch_hour = ? and row_id >= ? and row_id < ? and line_fault is not null",
        [hour, lo, hi],
    ).fetchall()
    return {row_id: {f"{code}|{REASONS[code].message}"} for row_id, code in rows}


def validate_hour(con: duckdb.DuckDBPyConnection, hour: datetime, adapters: dict[str, Adapter], *,
                  future_skew: timedelta, late_limit: timedelta | None, chunk_rows: int,
                  max_invalid_share: float, expected_sources: tuple[str, ...] = (),
                  data_docs_dir: Path | None = None) -> ValidationOutcome:
    """Replace landing.events / landing.quarantine / landing.object_counts of `hour` from its staged records."""
    hour_end = hour + timedelta(hours=1)
    total, max_row = con.execute(
        "select count(*), coalesce(max(row_id), -1) from landing.staged_records where batch_hour = ?", [hour]
    ).fetchall()[0]
    runner = SuiteRunner()
    canonical = canonical_rules(hour, hour_end, future_skew, late_limit)
    per_source = {name: source_rules(adapter) for name, adapter in adapters.items()}
    columns = ", ".join(CHECKED_COLUMNS)
    canonical_select = ", ".join(f"s.{c}" for c in CANONICAL_COLUMN_NAMES).replace("s.raw", "s.raw::json")

    con.execute("begin transaction")
    for table in ("landing.events", "landing.quarantine", "landing.object_counts", "audit.validation_results"):
        con.execute(f"delete from {table} where batch_hour = ?", [hour])
    suppressed = drop_suppressed(con, hour)
    # the failing rows of every chunk (about 1% of the hour), split off after the last chunk
    con.execute("create or replace temp table hour_failures "
                "(row_id bigint primary key, reason_codes varchar[], message varchar)")
    for lo in range(0, max_row + 1, chunk_rows):
        hi = lo + chunk_rows
        failures = _line_fault_failures(con, hour, lo, hi)
        # as Arrow, from a relation: .df() built a Python string per value, and Arrow from an executed
        # statement's result copies every row once more (DuckDB warns)
        frame = con.sql(
            f"select {columns} from landing.staged_records "
            "where batch_hour = ? and row_id >= ? and row_id < ? and line_fault is null order by row_id",
            params=[hour, lo, hi],
        ).to_arrow_table().to_pandas()
        if len(frame):
            frame = _vectorisable_dtypes(frame)
            chunks = [("canonical", canonical, frame)]
            for source, part in frame.groupby("source", sort=True):
                chunks.append((source, per_source[source], part))
            for name, rules, part in chunks:
                for row_id, labels in runner.failing_rows(name, rules, part).items():
                    failures.setdefault(row_id, set()).update(labels)
        con.register("chunk_failures", _failures_table(failures))
        con.execute("insert into hour_failures select * from chunk_failures")
        con.unregister("chunk_failures")
        log.info("validated rows %s-%s of %s", lo, min(hi, total), total)

    # The hour's rows are split in one statement each (not per chunk): many INSERTs in one transaction keep
    # every row in memory until COMMIT (3.8 GB for a 10M-event hour); one INSERT writes its row groups out.
    # Both threads write row groups when the order of the rows in the file need not follow the staged order
    # (no reader depends on it): the events insert of a 1M-event hour 6.0 -> 4.7 s.
    con.execute("set preserve_insertion_order = false")
    con.execute(
        """insert into landing.quarantine
           select s.batch_hour, s.source, s.object_key, s.line_number, s.record_index, s.event_id, s.user_id,
                  f.reason_codes, f.message, coalesce(s.raw_text, s.raw)
           from landing.staged_records s join hour_failures f using (row_id)
           where s.batch_hour = ?""",
        [hour],
    )
    con.execute(
        f"""insert into landing.events
            select {canonical_select}
            from landing.staged_records s anti join hour_failures f using (row_id)
            where s.batch_hour = ?""",
        [hour],
    )
    con.execute("drop table hour_failures")
    con.execute("reset preserve_insertion_order")

    con.execute(
        """insert into landing.object_counts
           with staged as (
               select source, object_key, count(*) as records_read from landing.staged_records
               where batch_hour = $hour group by all),
           valid as (select object_key, count(*) as n from landing.events where batch_hour = $hour group by all),
           bad as (select object_key, count(*) as n from landing.quarantine where batch_hour = $hour group by all)
           select $hour, staged.source, staged.object_key, records_read, coalesce(valid.n, 0), coalesce(bad.n, 0), 0
           from staged left join valid using (object_key) left join bad using (object_key)""",
        {"hour": hour},
    )
    for (source, object_key), count in suppressed.items():
        updated = con.execute(
            "update landing.object_counts set records_read = records_read + $n, records_suppressed = $n "
            "where batch_hour = $hour and object_key = $key returning 1",
            {"n": count, "hour": hour, "key": object_key}).fetchall()
        if not updated:  # every record of the object was suppressed
            con.execute("insert into landing.object_counts values ($hour, $source, $key, $n, 0, 0, $n)",
                        {"hour": hour, "source": source, "key": object_key, "n": count})
    unbalanced = con.execute(
        "select object_key, records_read, records_valid, records_quarantined from landing.object_counts "
        "where batch_hour = ? and records_read <> records_valid + records_quarantined + records_suppressed", [hour]
    ).fetchall()
    if unbalanced:
        con.execute("rollback")
        raise RuntimeError(f"records read != valid + quarantined for {unbalanced}; nothing was written")
    tallies = list(runner.tallies.values())
    if tallies:
        con.executemany(
            "insert into audit.validation_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[hour, "all" if t.suite == "canonical" else t.suite, t.suite, t.expectation, t.column, t.reason_code,
              t.notes, t.element_count, t.unexpected_count, t.unexpected_count == 0] for t in tallies],
        )
    con.execute("commit")

    outcome = ValidationOutcome(tallies=tallies)
    outcome.records, outcome.valid, outcome.quarantined = con.execute(
        "select sum(records_read), sum(records_valid), sum(records_quarantined) from landing.object_counts "
        "where batch_hour = ?", [hour]
    ).fetchall()[0]
    outcome.records, outcome.valid, outcome.quarantined = (
        int(outcome.records or 0), int(outcome.valid or 0), int(outcome.quarantined or 0))
    outcome.reasons = dict(con.execute(
        "select reason, count(*) from (select unnest(reason_codes) as reason from landing.quarantine "
        "where batch_hour = ?) group by reason order by reason", [hour]
    ).fetchall())
    if data_docs_dir is not None:
        _build_data_docs(runner, data_docs_dir / f"hour={hour:%Y-%m-%dT%H}")
    _batch_checks(con, hour, outcome, max_invalid_share, expected_sources)
    return outcome


def _batch_checks(con, hour: datetime, outcome: ValidationOutcome, max_invalid_share: float,
                  expected_sources: tuple[str, ...]) -> None:
    problems = []
    if outcome.records and outcome.quarantined / outcome.records > max_invalid_share:
        top = ", ".join(f"{code}={n}" for code, n in sorted(outcome.reasons.items(), key=lambda kv: -kv[1])[:5])
        problems.append(
            f"{outcome.quarantined} of {outcome.records} records ({outcome.quarantined / outcome.records:.0%}) "
            f"are invalid, above EVENTS_MAX_INVALID_SHARE={max_invalid_share:.0%}; top reasons: {top}. "
            f"Look at: select * from landing.quarantine where batch_hour = '{hour:%Y-%m-%d %H:00}'"
        )
    delivered = {row[0] for row in con.execute(
        "select distinct source from landing.object_counts where batch_hour = ? and records_valid > 0", [hour]
    ).fetchall()}
    silent = sorted(set(expected_sources) - delivered)
    if silent:
        problems.append(
            f"no valid events from {silent} for hour {hour:%Y-%m-%dT%H} although EVENTS_EXPECTED_SOURCES lists "
            f"them: check the collector and raw/<source>/dt={hour:%Y-%m-%d}/hour={hour:%H}/ in object storage"
        )
    if problems:
        raise BatchCheckError(" | ".join(problems))


def _build_data_docs(runner: SuiteRunner, site_dir: Path) -> None:
    """A static GX Data Docs site per hour from the suites that ran (one page per suite)."""
    shutil.rmtree(site_dir, ignore_errors=True)  # a rerun of the hour replaces its site
    site_dir.mkdir(parents=True)
    context = runner.context
    context.add_data_docs_site(
        site_name="hourly",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=["hourly"])
