"""Assets shared by the DAGs: downstream DAGs run on data, not on clocks."""

from __future__ import annotations

from airflow.sdk import Asset

# Updated whenever a new analysts' snapshot is swapped in.
ANALYTICS_SNAPSHOT = Asset("duckdb://analytics/events_snapshot")
# Updated when the segment definitions in segments/*.yml change (see segment_definitions DAG).
SEGMENT_DEFINITIONS = Asset("file://segments/definitions")
