"""The report's HTML opens offline in a real browser (headless Chromium) and every plot loads."""

from __future__ import annotations

import json

import pytest

from dashboard_helpers import chrome, chromium_missing

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")]


def test_report_html_renders_with_all_plots_and_no_network(tmp_path, monkeypatch):
    import trainyard
    from conftest import make_mixed_table
    from test_evaluate_report import fit_model
    from trainyard.tasks import Task

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never try to download a driver
    df = make_mixed_table(400, seed=4)
    model = fit_model(df.iloc[:250], "churn", Task.BINARY)
    report = trainyard.evaluate(model, df.iloc[250:].reset_index(drop=True), sensitive="region", n_boot=100)
    html = report.save(tmp_path / "out", "report")["html"]
    driver = chrome(tmp_path / "profile")
    try:
        driver.get(html.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
        assert len(images) >= 5
        for alt, complete, width, height in images:
            assert complete and width > 100 and height > 100, alt
        assert "Fairness" in driver.find_element("tag name", "body").text
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requests if m.get("method") == "Network.requestWillBeSent"]
        assert all(not u.startswith(("http:", "https:")) for u in urls), urls
    finally:
        driver.quit()
