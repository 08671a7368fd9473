"""Issue #6, part 2: in a real browser (headless Chromium, the Debian package, driven by Playwright) a data
engineer logs in to the Airflow UI, switches the hourly DAG on, creates a 2-hour backfill through the
Trigger -> Backfill dialog and sees both runs succeed. Screenshots of each step go to
test-output/test_backfill_browser/. Airflow's metadata is on PostgreSQL: on SQLite the dialog's request
can fail part-way with "database is locked" (see test_backfill_rest.py)."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import suppress
from datetime import datetime

import pytest
from airflow_services import (
    DAG_ID,
    TEST_OUTPUT,
    AirflowError,
    ReferenceRun,
    airflow_stack,
    assert_hourly_intervals,
    assert_same_tables,
    hours_from,
    postgres_metadata_env,
    upload_sample_hours,
    warehouse_checksums,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOURS = hours_from(datetime(2026, 11, 19, 0), 2)  # the first two hours of test_backfill_rest's six
SHOTS = TEST_OUTPUT / "test_backfill_browser"
# Debian's Chromium, headless, talking to nothing but the Airflow under test.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UI_TIMEOUT_MS = 60_000
INSTALL_HINT = "install it with `apt-get install -y chromium chromium-driver` (.ci/run does this before make test)"


@pytest.fixture
def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip(f"headless Chromium not found on PATH: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (requirements-dev.txt pins it)")
    return binary


def test_backfill_from_the_ui_dialog(chromium_binary, postgres_database, s3, s3_server, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect, sync_playwright

    reference = ReferenceRun.shared(s3_server)
    reference.ensure(HOURS)
    fs, bucket = s3
    upload_sample_hours(fs, bucket, HOURS)
    airflow_events = tmp_path / "airflow-events"
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)

    with airflow_stack(tmp_path / "airflow", s3_connection=os.environ["AIRFLOW_CONN_EVENTS_S3"],
                       events_home=airflow_events, extra_env=postgres_metadata_env(postgres_database),
                       name="test_backfill_browser") as af, sync_playwright() as pw:
        af.wait_for_dag(DAG_ID)
        browser = pw.chromium.launch(executable_path=chromium_binary, args=CHROMIUM_ARGS)
        # UTC in the browser: the dialog's date fields are in the browser's time zone
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
        # generous: on a busy 2-core machine the UI can take a while to load its data and translations
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            # 1. log in (SimpleAuthManager's login form)
            page.goto(f"{af.url}/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(af.password)
            page.screenshot(path=SHOTS / "01-login.png")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url)

            # 2. open the hourly DAG and switch it on. (The dialog's "Unpause on trigger" would do both at
            # once, but on SQLite its two concurrent writes can fail with "database is locked".)
            page.goto(f"{af.url}/dags/{DAG_ID}")
            page.wait_for_load_state("networkidle")
            toggle = page.get_by_test_id("toggle-pause")
            expect(toggle).to_have_attribute("data-state", "unchecked")
            toggle.click()
            expect(toggle).to_have_attribute("data-state", "checked")
            page.screenshot(path=SHOTS / "02-dag-switched-on.png")

            # 3. Trigger -> Backfill: the two hours, all runs, one at a time
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text("Backfill", exact=True).click()
            dialog.locator("input[name=from_date]").fill(f"{HOURS[0]:%Y-%m-%dT%H:%M}")
            dialog.locator("input[name=to_date]").fill(f"{HOURS[-1]:%Y-%m-%dT%H:%M}")
            dialog.get_by_text("All Runs", exact=True).click()
            dialog.locator("input[name=max_active_runs]").fill("1")
            expect(dialog.get_by_text(f"{len(HOURS)} runs will be triggered")).to_be_visible()
            page.screenshot(path=SHOTS / "03-backfill-dialog.png")
            dialog.get_by_role("button", name="Run Backfill").click()
            expect(dialog).to_be_hidden()
            expect(page.get_by_text("Backfill in progress")).to_be_visible()
            page.screenshot(path=SHOTS / "04-backfill-in-progress.png")

            # 4. the Runs tab until both runs show Success
            page.goto(f"{af.url}/dags/{DAG_ID}/runs")
            deadline = time.monotonic() + af.run_timeout(len(HOURS))
            while True:
                rows = page.get_by_role("row").filter(has_text="backfill__")
                # the runs table renders after the page's load event: wait for its rows before reading
                # them (read at once, a busy machine showed an empty table after every reload for 12 min)
                with suppress(PlaywrightTimeoutError):
                    rows.nth(len(HOURS) - 1).wait_for(timeout=UI_TIMEOUT_MS)
                states = [r.inner_text() for r in rows.all()]
                if len(states) == len(HOURS) and all("Success" in s for s in states):
                    break
                if any("Failed" in s for s in states) or time.monotonic() > deadline:
                    raise AirflowError(f"the UI shows {states}\n" + af.failure_report(DAG_ID, af.dag_runs(DAG_ID)))
                af.check_alive()
                page.wait_for_timeout(5_000)
                page.reload()
            page.screenshot(path=SHOTS / "05-runs-succeeded.png", full_page=True)
        except BaseException:
            page.screenshot(path=SHOTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()
        runs = af.dag_runs(DAG_ID)

    # what the UI showed is what happened: two backfill runs, one per hour, and the embedded default's tables
    assert {(r["run_type"], r["state"]) for r in runs} == {("backfill", "success")}, runs
    assert_hourly_intervals(runs, HOURS)
    assert_same_tables(warehouse_checksums(airflow_events / "warehouse" / "work.duckdb"),
                       reference.checksums(HOURS))
