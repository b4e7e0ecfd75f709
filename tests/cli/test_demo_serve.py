"""What a new user does after ``make demo``: open the printed address, sign in with the
printed credentials, and find the board's numbers and any customer's 360."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _forward_lines(stream: IO[str], lines: queue.SimpleQueue[str]) -> None:
    try:
        for line in stream:
            lines.put(line)
    except ValueError:  # the test closed the stream after the process ended
        return


def _read_until(process: subprocess.Popen[str], pattern: re.Pattern[str], seconds: float) -> str:
    """Output so far once ``pattern`` appears in it (fails after ``seconds``).

    A thread reads the lines: ``select`` on the pipe cannot see lines that the text
    wrapper has already buffered, so several lines arriving at once would stall it.
    """
    assert process.stdout is not None
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    threading.Thread(target=_forward_lines, args=(process.stdout, lines), daemon=True).start()
    output = ""
    deadline = time.monotonic() + seconds
    while not pattern.search(output):
        assert time.monotonic() < deadline, f"timed out waiting for {pattern.pattern}:\n{output}"
        try:
            output += lines.get(timeout=1.0)
        except queue.Empty:
            assert process.poll() is None, f"demo exited early:\n{output}"
    return output


def _wait_ready(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the demo server never became ready")


@pytest.mark.integration
@pytest.mark.slow
def test_demo_serves_the_dashboard_and_the_printed_admin_can_sign_in(tmp_path: Path) -> None:
    port = _free_port()
    environment = {
        **os.environ,
        "PERENNIAL_HOME": str(tmp_path / "home"),
        "PERENNIAL_API_PORT": str(port),
        "COLUMNS": "200",
    }
    command = [
        sys.executable, "-c", "from perennial.cli.app import main; main()",
        "demo", "run", "--customers", "300", "--history-days", "10",
        "--out", str(tmp_path / "demo"), "--serve",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output = _read_until(process, re.compile(r"password: \S+"), seconds=300)
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/" in output
        password = re.findall(r"password: (\S+)", output)[-1]
        _wait_ready(base)
        with httpx.Client(base_url=base, timeout=10) as browser:
            assert browser.get("/").status_code in (200, 303, 307)
            login = browser.post("/v1/auth/login", json={"username": "admin", "password": password})
            assert login.status_code == 200, login.text
            kpis = browser.get("/v1/lifecycle/kpis")
            assert kpis.status_code == 200, kpis.text
            customers = browser.get("/v1/customers", params={"limit": 1}).json()["items"]
            assert customers
            one = browser.get(f"/v1/customers/{customers[0]['customer_id']}")
            assert one.status_code == 200
            assert one.json()["customer_id"] == customers[0]["customer_id"]
            segments = {s["name"]: s for s in browser.get("/v1/segments").json()}
            assert {"education_a", "education_b", "education_c", "high_value_at_risk"} <= set(
                segments
            )
            assert segments["learners"]["members"] > 0
            assert all(s["refreshed_at"].startswith("2025-12-31T16:00") for s in segments.values())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
