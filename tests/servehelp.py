"""Helpers for the serving tests: a trained workspace and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

from conftest import make_mixed_table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_churn(home, families=("lightgbm",), seed=0, name="churn"):
    from trainyard import api

    return api.train(make_mixed_table(600, seed=seed), target="churn", workspace=home, include=list(families),
                     time_limit=120, name=name)


@contextmanager
def running_server(settings):
    """create_app(settings) behind uvicorn in a thread; yields (base_url, app)."""
    import uvicorn

    from trainyard.serve.app import create_app

    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
