"""CLI: `flask --app wsgi cadence tick|preview|cron`, `worker`, `dev`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from cadence import planner
from cadence.cadences import preview as preview_occurrences
from cadence.clock import parse_instant, utcnow
from cadence.models import Cadence
from surveys.extensions import db

cadence_cli = AppGroup("cadence", help="Scheduling: run a tick, preview a cadence, run the cron scheduler.")


def _instant(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 instant (e.g. 2026-12-01T09:00:00Z)") from None


@cadence_cli.command("tick")
@click.option("--now", "now", callback=_instant, help="Run as of this ISO 8601 instant instead of the clock.")
def tick_command(now):
    """Run one scheduler pass: open, remind, close; enqueue deliveries."""
    report = planner.tick(now or utcnow())
    for line in report.lines():
        click.echo(line)


@cadence_cli.command("preview")
@click.argument("cadence_id", type=int)
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--now", "now", callback=_instant, help="Preview from this instant instead of the clock.")
def preview_command(cadence_id, count, now):
    """Print the next occurrences of a cadence (period, open, close, reminders)."""
    cadence = db.session.get(Cadence, cadence_id)
    if cadence is None:
        raise click.ClickException(f"no cadence with id {cadence_id}")
    click.echo(f"{cadence.name} ({cadence.rrule}, {cadence.send_time} {cadence.timezone})")
    for item in preview_occurrences(cadence, now or utcnow(), count):
        reminders = ", ".join(item["reminders_at"]) or "none"
        click.echo(f"{item['period_key']}: opens {item['opens_at']}, closes {item['closes_at']}, reminders {reminders}")


@cadence_cli.command("status")
def status_command():
    """Print the scheduler's health: last tick, cron heartbeat, queues, failures."""
    from cadence.operations import status, status_lines

    for line in status_lines(status(utcnow())):
        click.echo(line)


@cadence_cli.command("cron")
def cron_command():
    """Run RQ's cron scheduler, which enqueues the tick every minute."""
    from rq.cron import CronScheduler

    from cadence.redis_server import connect

    scheduler = CronScheduler(connection=connect(current_app))
    scheduler.load_config_from_file("cadence.cron")
    scheduler.start()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@with_appcontext
def worker_command(burst):
    """Run an RQ worker (with its scheduler, for retries) on Canary's queues."""
    from cadence.queues import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def dev_command(host, port):
    """Start everything locally: web, worker, cron scheduler, embedded Redis.

    Each child runs in a process group of its own, so a terminal's Ctrl-C
    reaches only this command, which then stops them in order: web, worker and
    cron first (they release their RQ locks and registrations in Redis), the
    embedded Redis last (it writes its append-only file), so the next start
    finds no stale lock."""
    from cadence.redis_server import _answers, start_redis_server
    from surveys.demo import DEMO_PASSWORD

    app = current_app._get_current_object()
    redis_process: subprocess.Popen | None = None
    services: dict[str, subprocess.Popen] = {}

    def stop(*_):
        raise KeyboardInterrupt

    # Explicit handlers: a shell that starts us in the background sets SIGINT
    # to "ignore", and Ctrl-C must still stop everything.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        env = dict(os.environ)
        if not app.config.get("REDIS_URL"):
            socket_path = app.config["EMBEDDED_REDIS_SOCKET"]
            if not _answers(socket_path):
                redis_process = start_redis_server(socket_path)
                deadline = time.monotonic() + 10
                while not _answers(socket_path):
                    if time.monotonic() > deadline or redis_process.poll() is not None:
                        raise click.ClickException("the embedded Redis did not start; see instance/redis.log")
                    time.sleep(0.05)
            env["REDIS_URL"] = f"unix://{socket_path}"
        flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
        commands = {
            "web": flask + ["run", "--host", host, "--port", str(port), "--no-reload"],
            "worker": flask + ["worker"],
            "cron": flask + ["cadence", "cron"],
        }
        for name, command in commands.items():
            services[name] = _start_child(command, env)
        base = f"http://{host}:{port}"
        click.echo("")
        click.echo(f"Canary is running at {base}")
        click.echo(f"  sign in as the demo PM:     aroha.nguyen@example.com / {DEMO_PASSWORD}")
        click.echo(f"  sign in as the demo leader: ava.sato@example.com / {DEMO_PASSWORD}")
        click.echo(f"  sign in as the demo admin:  lena.okafor@example.com / {DEMO_PASSWORD}")
        click.echo(f"  the outbox (rep links; sign in as the admin): {base}/cadences/outbox")
        click.echo("Press Ctrl-C to stop everything.")
        click.echo("")
        while True:
            exited = [name for name, child in services.items() if child.poll() is not None]
            if redis_process is not None and redis_process.poll() is not None:
                exited.append("redis")
            if exited:
                click.echo(f"stopping: a process exited ({', '.join(exited)})", err=True)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        # A second Ctrl-C while stopping must not cut the order short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_children(list(services.values()))
        if redis_process is not None:
            _stop_children([redis_process])


def _start_child(command: list[str], env: dict) -> subprocess.Popen:
    """A child of `dev` in its own process group (out of reach of the
    terminal's Ctrl-C), killed by the kernel if `dev` itself is killed."""
    from cadence.redis_server import die_with_parent

    return subprocess.Popen(command, env=env, preexec_fn=die_with_parent, process_group=0)


def _stop_children(children: list[subprocess.Popen], timeout: float = 15) -> None:
    """SIGTERM to each child still running (a warm shutdown for RQ's worker
    and cron scheduler), then wait for all; kill what is still there after
    `timeout` seconds."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def register_cadence_commands(app):
    app.cli.add_command(cadence_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(dev_command)
