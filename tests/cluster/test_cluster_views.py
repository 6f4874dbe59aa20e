"""What a user sees of a cluster run: the dashboard's live trial stream follows trials recorded out of number order."""

from __future__ import annotations


def test_dashboard_stream_cursor_follows_recording_order_not_trial_numbers(workspace):
    from trainyard.dashboard import queries as q
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workspace).store
    run_id = store.create_run("c")
    store.add_trial(run_id, 2, "linear", status="ok", val_score=0.8, extra={"node": "aaaa1111"})  # trial 2 returned first
    first = q.trials_after(store, run_id, 0)
    assert [t["number"] for t in first] == [2]
    store.add_trial(run_id, 1, "lightgbm", status="ok", val_score=0.9, extra={"node": "bbbb2222"})
    later = q.trials_after(store, run_id, first[-1]["id"])
    assert [(t["number"], t["extra"]["node"]) for t in later] == [(1, "bbbb2222")]  # not lost behind trial 2


def test_the_cli_keeps_one_line_per_node_refreshed_with_each_sample():
    from trainyard.commands._live import StepLive, TableLive

    for live_class in (TableLive, StepLive):
        with live_class(enabled=True) as live:
            sample = {"cpus": 1.0, "machine_pct": 93.0, "machine_cpus": 2}
            live.update("nodes", {"nodes": [{"node": "aaaa1111", "cpus_busy": 0.2, **sample}, {"node": "bbbb2222", "cpus_busy": None, **sample}]})
            live.update("nodes", {"nodes": [{"node": "aaaa1111", "cpus_busy": 0.97, **sample}], "seconds": 3})
            lines = [t.description for t in live.progress.tasks if t.fields.get("node")]
            bars = [t.completed for t in live.progress.tasks if t.fields.get("node")]
        assert len(lines) == 2  # one line per node, updated in place
        assert "node aaaa1111: 0.97 of 1 CPU busy" in lines[0] and "machine 93% of 2 cores" in lines[0] and bars[0] == 0.97
        assert "bbbb2222: no answer" in lines[1]
