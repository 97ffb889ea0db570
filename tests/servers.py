"""Real processes for tests: start commands, wait for them, and a gunicorn
server with the project's gunicorn.conf.py (used by test_faults_more and the
black-box suite, test_blackbox)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port


def wait_until(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


@contextmanager
def running(*commands: list[str], env: dict, supervise: bool = False, log: Path | None = None):
    """Start each command as a process in the project; stop them all after.
    With `supervise`, one that exits is started again within half a second,
    as systemd's Restart=always does (deploy/systemd/). With `log`, their
    stdout and stderr are appended to that file (else discarded)."""
    def start(command):
        if log is None:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(log, "ab") as output:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)

    processes = [start(command) for command in commands]
    stopping = threading.Event()

    def supervisor():
        while not stopping.wait(0.5):
            for index, process in enumerate(processes):
                if process.poll() is not None:
                    processes[index] = start(commands[index])

    watcher = threading.Thread(target=supervisor, daemon=True)
    if supervise:
        watcher.start()
    try:
        yield processes
    finally:
        stopping.set()
        if supervise:
            watcher.join(timeout=5)
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def gunicorn_server(env: dict, workers: int = 2, log: Path | None = None, access_log: Path | None = None):
    """gunicorn serving wsgi:app with `env`; yields its base URL. `log` gets
    its error log and the app's log, `access_log` its (scrubbed) access log."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py", "--workers", str(workers),
               "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    access = str(access_log) if access_log else "/dev/null"
    with running(command, env={**env, "GUNICORN_ACCESS_LOG": access}, log=log) as (server,):
        def up():
            assert server.poll() is None, "gunicorn exited"
            try:
                return requests.get(f"{base}/healthz", timeout=2).status_code == 200
            except (requests.ConnectionError, requests.Timeout):
                return False  # not listening yet, or still loading the app on a busy machine

        wait_until(up, 40, "gunicorn to answer /healthz", interval=0.3)
        yield base
