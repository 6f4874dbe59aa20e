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
