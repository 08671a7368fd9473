"""The warehouse writer lock: another process waits (or times out saying who holds it); one process re-enters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from event_pipeline.warehouse import connect
from event_pipeline.writer_lock import WarehouseLockTimeout, warehouse_writer_lock


def hold_in_another_process(warehouse: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from event_pipeline.writer_lock import warehouse_writer_lock\n"
        f"with warehouse_writer_lock(Path({str(warehouse)!r}), 'nightly import'):\n"
        f"    print('held', flush=True); time.sleep({seconds})")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_times_out_naming_the_holder(tmp_path):
    warehouse = tmp_path / "work.duckdb"
    holder = hold_in_another_process(warehouse, 5)
    try:
        with pytest.raises(WarehouseLockTimeout) as failure, warehouse_writer_lock(warehouse, "test", timeout_s=0.5):
            pass
        assert f"held by pid {holder.pid} since " in str(failure.value)
        assert "nightly import" in str(failure.value)
    finally:
        holder.kill()
        holder.wait()
    # the kernel released it with the process: no stale lock
    with warehouse_writer_lock(warehouse, "after", timeout_s=1):
        pass


def test_connect_waits_for_the_holder_instead_of_failing_on_duckdbs_file_lock(tmp_path):
    warehouse = tmp_path / "work.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from event_pipeline.warehouse import connect\n"
        f"with connect(Path({str(warehouse)!r})) as con:\n"
        "    con.execute('create table landing.marker as select 42 as answer')\n"
        "    print('held', flush=True); time.sleep(2)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(duckdb.IOException):  # what every writer would hit without the lock
        duckdb.connect(str(warehouse)).close()
    with connect(warehouse) as con:
        assert con.execute("select answer from landing.marker").fetchall() == [(42,)]
    assert holder.wait(timeout=30) == 0


def test_one_process_re_enters_its_own_lock(tmp_path):
    warehouse = tmp_path / "work.duckdb"
    with warehouse_writer_lock(warehouse, "outer", timeout_s=0.5), connect(warehouse) as con:
        assert con.execute("select 1").fetchall() == [(1,)]
