"""The web dashboard: runs, models, data audits, monitoring and predictions in a browser.

It only reads the workspace (plus setting aliases when a user promotes or
rolls back), never trains, and serves every asset itself. Start it with
`trainyard ui`; build it in Python with `trainyard.dashboard.app.create_app`.
"""
