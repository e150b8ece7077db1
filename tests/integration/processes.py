"""Running the service's own processes in tests: `segmentation serve`, `project`, `rebuild`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from service.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service process reads these settings from."""
    env = {
        **os.environ,
        "SEGMENTATION_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "SEGMENTATION_REDIS_PREFIX": settings.redis_prefix,
        "SEGMENTATION_EVENT_STORE": settings.event_store,
        "SEGMENTATION_API_KEYS": settings.api_keys,
        "SEGMENTATION_POLL_INTERVAL": "0.02",
        **settings.eventsourcing_env,
        **extra,
    }
    return env


def start(settings: Settings, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    """Start `segmentation ARGS...` with these settings."""
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", *args],
        env=environment(settings, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def serving(settings: Settings, *extra_args: str) -> Iterator[httpx.Client]:
    """An API process (`segmentation serve`) and a client for it; stopped on exit."""
    port = free_port()
    process = start(settings, "serve", "--port", str(port), *extra_args)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield client
    finally:
        client.close()
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_until(check: Any, timeout: float = 30, every: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(every)
