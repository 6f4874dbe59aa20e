"""The dashboard in a real headless Chromium: every page, the live curve, promote, roll back, try-a-model.

Screenshots go to test-artifacts/dashboard/. These tests skip only when
Chromium or its driver is absent; CI installs both (.ci/run).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from dashboard_helpers import ARTIFACTS, UiServer, chrome, chromium_missing, populate

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import os

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never try to download a driver
    home = tmp_path_factory.mktemp("dash") / "ws"
    info = populate(home)
    server = UiServer(home)
    driver = chrome(tmp_path_factory.mktemp("chrome-profile"))
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield {"home": home, "server": server, "driver": driver, **info}
    driver.quit()
    server.stop()


def store_of(home):
    from trainyard.registry.workspace import Workspace

    return Workspace.resolve(home).store


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except (NoSuchElementException, StaleElementReferenceException):  # the page is being replaced
            value = None
        except WebDriverException as exc:  # ChromeDriver's other word for a replaced node
            if "does not belong to the document" not in str(exc):
                raise
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def browser_problems(driver, base: str) -> tuple[list[str], list[str]]:
    """(console errors, requested URLs not served by the dashboard) since the last call."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    outside = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss", "ftp") and not url.startswith(base + "/"):
                outside.append(url)  # (chrome:// entries are the browser's own UI, not network)
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    outside += [u for u in resources if not u.startswith(base + "/") and not u.startswith(("data:", "blob:"))]
    return errors, outside


def open_page(env, path: str, shot: str):
    driver, base = env["driver"], env["server"].url
    driver.get(base + path)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", what=f"{path} to load")
    time.sleep(0.3)  # let scripts run (charts, streams)
    full_screenshot(driver, shot)
    return driver


def full_screenshot(driver, shot: str) -> None:
    """The whole page, not only the window (the window is set back afterwards)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(1000, min(height + 140, 8000)))
    time.sleep(0.2)
    driver.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
    driver.set_window_size(1400, 1000)


def test_every_page_loads_without_console_errors_or_outside_requests(env):
    driver, base = env["driver"], env["server"].url
    browser_problems(driver, base)  # drain
    pages = {
        "runs": "/runs", "run-finished": f"/runs/{env['second']}", "run-running": f"/runs/{env['running']}",
        "models": "/models", "model-version": "/models/churn/2", "compare": "/models/churn/compare?a=1&b=2",
        "data": "/data", "monitoring": "/monitoring", "predictions": "/predictions",
        "run-image": f"/runs/{env['image_run']}", "model-image": "/models/shapes/1",
        "run-language-model": f"/runs/{env['lm_run']}", "model-language-model": "/models/corpus/1",
    }
    for shot, path in pages.items():
        open_page(env, path, shot)
        assert "trainyard" in driver.title
        errors, outside = browser_problems(driver, base)
        assert errors == [], f"console errors on {path}: {errors}"
        assert outside == [], f"{path} fetched from outside the dashboard: {outside}"
    # the finished run's leaderboard arrived through the stream and is ranked
    open_page(env, f"/runs/{env['second']}", "run-finished")
    wait_for(lambda: driver.find_elements("css selector", "#leaderboard tbody tr[data-trial]"), what="leaderboard rows")
    assert driver.find_element("css selector", "#run-status").text == "finished"
    assert wait_for(lambda: driver.find_element("css selector", "#chart-trials").get_attribute("data-points"), what="trial chart")


def test_live_curve_moves_while_the_run_writes_metrics(env):
    driver, base = env["driver"], env["server"].url
    store, run_id = store_of(env["home"]), env["running"]
    open_page(env, f"/runs/{run_id}", "live-before")
    chart = wait_for(lambda: driver.find_elements("css selector", "#chart-train_loss"), what="train_loss chart")[0]
    before = int(wait_for(lambda: chart.get_attribute("data-points"), what="first points"))
    assert before == 5

    def writer():
        for step in range(5, 60):
            store.log_metrics(run_id, step, {"train_loss": 1.0 / (step + 1), "val_loss": 1.2 / (step + 1)})
            time.sleep(0.08)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_for(lambda: int(chart.get_attribute("data-points")) >= before + 10, what="the curve to grow")
        middle = int(chart.get_attribute("data-points"))
        driver.save_screenshot(str(ARTIFACTS / "live-during.png"))
        wait_for(lambda: int(chart.get_attribute("data-points")) > middle, what="the curve to keep growing")
        store.add_trial(run_id, 0, "mlp", status="ok", val_score=0.61, fit_seconds=1.5)
        wait_for(lambda: driver.find_elements("css selector", "#leaderboard tr[data-trial='0']"), what="a live leaderboard row")
        # the run records its best score when it ends; meanwhile the page shows the best trial so far
        assert driver.find_element("css selector", "#run-best").text == "0.6100"
        assert "best trial so far" in driver.find_element("css selector", "#run-best-family").text
        # audit findings logged by the running process appear without a reload
        assert driver.find_element("css selector", "#audit-empty").is_displayed()
        store.add_event(run_id, "audit", "data audit: 0 blocking, 1 warning", data={"summary": {"warning": 1}, "findings": [
            {"severity": "warning", "column": "charges", "what": "8% missing values", "why": "models must impute them", "fix": "nothing"}]})
        row = wait_for(lambda: driver.find_elements("css selector", "#audit-live tbody tr.sev-warning"), what="a live audit finding")[0]
        assert "charges" in row.text and "8% missing values" in row.text
    finally:
        thread.join()
    assert driver.execute_script("return performance.getEntriesByType('navigation').length") == 1  # no reload happened
    store.update_run(run_id, status="finished", best_score=0.61, best_family="mlp")
    wait_for(lambda: driver.find_element("css selector", "#run-status").text == "finished", what="status to turn finished")
    assert driver.find_element("css selector", "#run-best-family").text == "mlp"
    wait_for(lambda: driver.find_element("tag name", "body").get_attribute("data-stream") == "ended", what="the stream to end")
    assert int(chart.get_attribute("data-points")) == 60
    driver.save_screenshot(str(ARTIFACTS / "live-after.png"))
    errors, outside = browser_problems(driver, base)
    assert errors == [] and outside == []


def test_promote_and_roll_back_with_confirmation(env):
    from selenium.webdriver.common.by import By

    driver, base = env["driver"], env["server"].url
    store = store_of(env["home"])
    open_page(env, "/models", "models-before-promote")
    driver.find_element(By.CSS_SELECTOR, ".js-promote[data-version='1']").click()
    dialog = driver.find_element(By.ID, "promote-dialog")
    assert dialog.is_displayed()
    driver.find_element(By.ID, "promote-cancel").click()  # cancelling changes nothing
    time.sleep(0.3)
    assert store.list_models("churn")[1]["aliases"] == []
    driver.find_element(By.CSS_SELECTOR, ".js-promote[data-version='2']").click()
    alias = driver.find_element(By.ID, "promote-alias")
    alias.clear()
    alias.send_keys("production")
    driver.save_screenshot(str(ARTIFACTS / "promote-dialog.png"))
    driver.find_element(By.ID, "promote-ok").click()
    wait_for(lambda: "now points at v2" in driver.find_element(By.ID, "flash").text, what="the promote confirmation")
    assert store.resolve_model("churn@production")["version"] == 2
    # roll back: production -> v1, through the confirmation dialog
    driver.find_element(By.CSS_SELECTOR, ".js-alias[data-alias='production']").click()
    assert "v1" in driver.find_element(By.ID, "confirm-text").text
    driver.save_screenshot(str(ARTIFACTS / "rollback-dialog.png"))
    driver.find_element(By.ID, "confirm-ok").click()
    wait_for(lambda: "now points at v1 (was v2)" in driver.find_element(By.ID, "flash").text, what="the roll-back confirmation")
    assert store.resolve_model("churn@production")["version"] == 1
    assert "v1" in driver.find_element(By.CSS_SELECTOR, ".alias[data-alias='production'] .alias-version").text
    driver.save_screenshot(str(ARTIFACTS / "models-after-rollback.png"))
    errors, outside = browser_problems(driver, base)
    assert errors == [] and outside == []


def test_try_a_model_from_its_schema_and_browse_the_log(env):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, base = env["driver"], env["server"].url
    open_page(env, "/predictions", "predictions")
    wait_for(lambda: driver.find_element(By.ID, "try-form").get_attribute("data-ready") == "true", what="the form")
    Select(driver.find_element(By.ID, "try-model")).select_by_value("churn@2")
    time.sleep(0.5)
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#try-fields input[name='tenure']"), what="fields of churn@2")
    names = {e.get_attribute("name") for e in driver.find_elements(By.CSS_SELECTOR, "#try-fields input, #try-fields textarea")}
    assert {"tenure", "charges", "plan", "region", "support_calls"} <= names
    driver.find_element(By.CSS_SELECTOR, "#try-fields input[name='tenure']").send_keys("3")
    driver.find_element(By.CSS_SELECTOR, "#try-fields input[name='plan']").send_keys("monthly")
    driver.find_element(By.ID, "try-submit").click()
    table = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#try-output"), what="a prediction")[0]
    assert "churn_predicted" in table.text and "proba_yes" in table.text
    driver.save_screenshot(str(ARTIFACTS / "predictions-tried.png"))
    # the log, filtered to one request
    request_id = env["requests"][7]
    open_page(env, f"/predictions?model=churn&request_id={request_id}", "predictions-filtered")
    rows = driver.find_elements(By.CSS_SELECTOR, "#predictions-table tbody tr")
    assert len(rows) == 1 and request_id in rows[0].text
    errors, outside = browser_problems(driver, base)
    assert errors == [] and outside == []


def test_monitoring_shows_drift_volume_and_performance(env):
    from selenium.webdriver.common.by import By

    driver = open_page(env, "/monitoring?model=churn", "monitoring")
    assert wait_for(lambda: driver.find_element(By.ID, "volume-chart").get_attribute("data-points")) == "6"
    assert driver.find_element(By.ID, "drift-chart").get_attribute("data-points") == "6"
    assert driver.find_element(By.ID, "performance-chart").get_attribute("data-points") == "6"
    states = {r.get_attribute("data-column"): r.get_attribute("data-status")
              for r in driver.find_elements(By.CSS_SELECTOR, "#drift-table tbody tr")}
    assert states["charges"] == "drift"
    assert states["region"] == "ok" and states["tenure"] == "ok"
    assert "now" in driver.find_element(By.ID, "performance-summary").text


def test_compare_charts_hover_and_zoom(env):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, base = env["driver"], env["server"].url
    browser_problems(driver, base)  # drain
    open_page(env, "/models/churn/compare?a=1&b=2", "compare-charts")
    charts = {c.get_attribute("id"): c for c in driver.find_elements(By.CSS_SELECTOR, ".compare-chart")}
    assert {"chart-metrics-0", "chart-calibration", "chart-importance"} <= set(charts)
    assert len([k for k in charts if k.startswith("chart-fairness-0-")]) == 4  # accuracy, recall, precision, roc_auc by region
    for key, chart in charts.items():
        assert int(wait_for(lambda: chart.get_attribute("data-points"), what=f"{key} drawn")) > 0
    assert charts["chart-importance"].get_attribute("data-points") == "5"
    legend = charts["chart-calibration"].find_element(By.CSS_SELECTOR, ".u-legend").text
    assert "v1 (ECE 0." in legend and "v2 (ECE 0." in legend

    chart = charts["chart-importance"]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    over = chart.find_element(By.CSS_SELECTOR, ".u-over")
    width = over.size["width"]
    assert chart.get_attribute("data-x-range") == "-0.5,4.5"  # five features, one slot each
    # hover over the first feature: the legend shows both versions' importance with its +-1 std range
    ActionChains(driver).move_to_element_with_offset(over, int(-width * 0.4), 0).perform()
    values = wait_for(lambda: [v.text for v in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-value")][1:] if
                      all("[" in v.text for v in chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-value")[1:]) else None,
                      what="hover values")
    assert len(values) == 2
    driver.save_screenshot(str(ARTIFACTS / "compare-hover.png"))
    # drag across the first half: the chart zooms in; a double-click resets it
    ActionChains(driver).move_to_element_with_offset(over, int(-width * 0.45), 0).click_and_hold() \
        .move_by_offset(int(width * 0.45), 0).release().perform()
    low, high = map(float, wait_for(lambda: chart.get_attribute("data-x-range") != "-0.5,4.5" and chart.get_attribute("data-x-range"),
                                    what="the zoom").split(","))
    assert -0.5 <= low < high <= 2.5
    driver.save_screenshot(str(ARTIFACTS / "compare-zoomed.png"))
    ActionChains(driver).double_click(over).perform()
    wait_for(lambda: chart.get_attribute("data-x-range") == "-0.5,4.5", what="the zoom to reset")
    errors, outside = browser_problems(driver, base)
    assert errors == [] and outside == []


def test_a_cluster_runs_page_shows_each_nodes_cpu_live(env):
    """Per-node CPU samples (cluster/usage.py records them as node_cpu.NODE) fill a live row per node and a chart in seconds."""
    from selenium.webdriver.common.by import By

    store = store_of(env["home"])
    run_id = store.create_run("on-ray")
    store.log_metrics(run_id, 0, {"node_cpu.aaaa1111": 0.0, "node_cpu.bbbb2222": 0.0})
    driver = open_page(env, f"/runs/{run_id}", "run-nodes-before")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#nodes tr[data-node='bbbb2222']"), what="a row per node")
    store.log_metrics(run_id, 3, {"node_cpu.aaaa1111": 0.97, "node_cpu.bbbb2222": 0.42})
    row = driver.find_element(By.CSS_SELECTOR, "#nodes tr[data-node='aaaa1111']")
    wait_for(lambda: row.find_elements(By.TAG_NAME, "td")[2].text == "3", what="the row to follow the new sample")
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "0.9700"
    chart = driver.find_element(By.CSS_SELECTOR, "#chart-node_cpu_aaaa1111")
    assert chart.get_attribute("data-points") == "2"
    full_screenshot(driver, "run-nodes-after")
    store.update_run(run_id, status="finished")


def test_neural_run_pages_show_curves_and_single_values(env):
    from selenium.webdriver.common.by import By

    driver = open_page(env, f"/runs/{env['lm_run']}", "run-language-model")
    wait_for(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-stream") == "ended", what="the stream")
    curves = {c.get_attribute("data-key"): c.get_attribute("data-points") for c in driver.find_elements(By.CSS_SELECTOR, "#curves .chart")}
    assert curves["train_loss"] == "30" and int(curves["val_perplexity"]) >= 2
    once = {r.get_attribute("data-key") for r in driver.find_elements(By.CSS_SELECTOR, "#single-values tbody tr")}
    assert "unigram_perplexity" in once and "unigram_perplexity" not in curves  # a number, not a one-point chart
    driver = open_page(env, f"/runs/{env['image_run']}", "run-image")
    wait_for(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-stream") == "ended", what="the stream")
    once = {r.get_attribute("data-key") for r in driver.find_elements(By.CSS_SELECTOR, "#single-values tbody tr")}
    assert "test_accuracy" in once and driver.find_element(By.CSS_SELECTOR, "#chart-train_loss").get_attribute("data-points")


def test_live_page_follows_a_real_training_process(env, tmp_path):
    """`trainyard train` in another process: the open run page fills its leaderboard and trial curve as trials finish."""
    import os
    import subprocess
    import sys

    import httpx
    from selenium.webdriver.common.by import By

    from conftest import SRC, make_mixed_table

    driver, base = env["driver"], env["server"].url
    browser_problems(driver, base)  # drain
    data = tmp_path / "live.csv"
    make_mixed_table(3000, seed=3).to_csv(data, index=False)
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", "train", str(data), "--target", "churn", "--name", "live-churn",
                             "--max-trials", "12", "--preset", "fast"],  # a trial count, not a time limit: a loaded machine still trains
                            env={**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(env["home"])},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_id = wait_for(lambda: [r["id"] for r in httpx.get(base + "/api/runs?name=live-churn", timeout=10).json()["runs"]],
                          timeout=60, what="the training run to start")[0]
        driver.get(base + f"/runs/{run_id}")  # at once: on a loaded machine a short run would be over before a screenshot
        seen, audit_rows = [], 0  # (status, leaderboard rows, points on the trial chart)
        deadline = time.time() + 240
        while time.time() < deadline:
            status = driver.find_element(By.ID, "run-status").text
            rows = len(driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr[data-trial]"))
            points = driver.execute_script("var c = document.getElementById('chart-trials'); return c ? +c.getAttribute('data-points') : 0")
            seen.append((status, rows, points))
            if status == "running":  # the audit ran first: its findings are on the page while the run trains
                audit_rows = len(driver.find_elements(By.CSS_SELECTOR, "#audit-live tbody tr[class^='sev-'], table.findings tbody tr[class^='sev-']"))
            if rows and len(seen) % 10 == 0 and status == "running":
                driver.save_screenshot(str(ARTIFACTS / "live-training-during.png"))
            if status != "running":
                break
            time.sleep(0.3)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    while_running = sorted({rows for status, rows, _ in seen if status == "running"})
    assert len(while_running) >= 2 and while_running[-1] > 0, seen  # trials arrived while the run was still training
    assert seen[-1][0] == "finished" and seen[-1][1] >= while_running[-1] and seen[-1][2] > 0
    assert audit_rows > 0, "no audit findings shown while the run trained"
    model = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#run-model a"), what="the registered model's link")[0]
    assert model.text == "live-churn@1"
    assert "best trial so far" not in driver.find_element(By.ID, "run-best-family").text
    assert driver.execute_script("return performance.getEntriesByType('navigation').length") == 1  # never reloaded
    full_screenshot(driver, "live-training-finished")
    errors, outside = browser_problems(driver, base)
    assert errors == [] and outside == []
