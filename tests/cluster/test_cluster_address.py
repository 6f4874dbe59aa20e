"""The --cluster value and the deadlines around joining a cluster (no Ray cluster needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from conftest import SRC

from trainyard.cluster.address import ClusterError, parse_cluster, preflight
from trainyard.errors import ConfigError


@pytest.mark.parametrize("text, kind, host, port, cpus", [
    ("ray://head.example:10001", "client", "head.example", 10001, None),
    ("10.0.0.5:6379", "gcs", "10.0.0.5", 6379, None),
    ("auto", "auto", None, None, None),
    ("local:3", "local", None, None, 3),
])
def test_the_four_forms(text, kind, host, port, cpus):
    address = parse_cluster(text)
    assert (address.kind, address.host, address.port, address.cpus) == (kind, host, port, cpus)
    assert address.ray_address() == {"client": text, "gcs": text, "auto": "auto", "local": "local"}[kind]


def test_no_cluster_is_none_and_workers_need_one():
    assert parse_cluster(None) is None
    with pytest.raises(ConfigError, match="--workers needs --cluster"):
        preflight(None, workers=2)


def test_ray_not_installed_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ClusterError) as caught:
        preflight(parse_cluster("local:2"))
    assert "pip install 'trainyard[ray]'" in caught.value.fix


@pytest.mark.slow
def test_a_port_that_accepts_but_is_not_ray_fails_within_the_connect_deadline():
    """Something listens (the TCP probe passes) but never answers as Ray: the join gives up at its deadline with the
    fix, instead of Ray's own minutes of retries."""
    pytest.importorskip("ray")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code = ("from trainyard.cluster.address import parse_cluster; from trainyard.cluster.session import Cluster\n"
                f"try:\n    Cluster(parse_cluster('127.0.0.1:{port}'), connect_timeout_s=3).open()\n"
                "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
        env = {**os.environ, "PYTHONPATH": str(SRC), "RAY_AUTH_MODE": "disabled"}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ClusterError" in proc.stdout and "did not answer within 3s" in proc.stdout, proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1e9"])
def test_a_bad_connect_timeout_is_refused_before_the_run(monkeypatch, value):
    pytest.importorskip("ray")
    monkeypatch.setenv("TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S", value)
    with pytest.raises(ConfigError) as caught:
        preflight(parse_cluster("127.0.0.1:1"))
    assert "TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S" in str(caught.value) and "=120" in caught.value.fix


def test_the_connect_timeout_is_read_from_the_environment(monkeypatch):
    from trainyard.cluster.session import Cluster

    monkeypatch.setenv("TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S", "95")
    assert Cluster(parse_cluster("127.0.0.1:1")).connect_timeout_s == 95.0
    monkeypatch.delenv("TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S")
    assert Cluster(parse_cluster("127.0.0.1:1")).connect_timeout_s == 30.0
    assert Cluster(parse_cluster("127.0.0.1:1"), connect_timeout_s=3).connect_timeout_s == 3


def test_an_exception_without_text_still_gives_a_message():
    from trainyard.cluster.session import _first_line

    assert _first_line(RuntimeError()) == "RuntimeError"
    assert _first_line(ValueError("first\nsecond")) == "first"
