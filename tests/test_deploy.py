"""The deployment examples (Procfile, deploy/systemd/) parse and name commands
that exist: each Flask command answers `--help`, gunicorn accepts its
configuration and finds the app."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ("canary-web.service", "canary-worker@.service", "canary-cron.service")
VENV_BIN = Path(sys.executable).parent
PROCFILE_LINE = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*):\s*(?P<command>\S.*)$")


def procfile() -> dict[str, str]:
    entries = {}
    for number, line in enumerate((ROOT / "Procfile").read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = PROCFILE_LINE.match(line)
        assert match, f"Procfile line {number} is not 'name: command': {line!r}"
        assert match["name"] not in entries, f"Procfile names {match['name']} twice"
        entries[match["name"]] = match["command"]
    return entries


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as {section: {key: [values]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate((SYSTEMD / name).read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{name} line {number} is not 'Key=value' in a section: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def environment(tmp_path) -> dict:
    """What a process started from either file would see, pointed at nothing
    real: importing the app must not need a database or Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DATABASE_URL", "REDIS_URL"))}
    env.update(CANARY_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
               REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="deploy-test-" + "k" * 40,
               CANARY_INSTANCE_DIR=str(tmp_path), PORT="8000", PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def answers_help(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run a Procfile or unit command as a check: `flask ... --help`, or
    gunicorn's --check-config (loads the config file and the app, then exits)."""
    program = Path(argv[0]).name
    if program == "flask":
        command = [str(VENV_BIN / "flask"), *argv[1:], "--help"]
    elif program == "gunicorn":
        command = [str(VENV_BIN / "gunicorn"), *argv[1:], "--check-config"]
    else:
        pytest.fail(f"unexpected program {argv[0]!r}")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def expand(command: str, env: dict) -> list[str]:
    """${NAME:-default} as a shell would expand it, then split into words."""
    def value(match):
        return env.get(match["name"]) or match["default"] or ""

    return shlex.split(re.sub(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}", value, command))


def test_procfile_has_web_worker_cron_and_release_and_each_command_exists(tmp_path):
    entries = procfile()
    assert set(entries) == {"release", "web", "worker", "cron"}
    assert entries["worker"].split()[-1] == "worker" and entries["cron"].endswith("cadence cron")
    env = environment(tmp_path)
    for name, command in entries.items():
        result = answers_help(expand(command, env), env)
        assert result.returncode == 0, f"Procfile {name}: {command}\n{result.stdout}\n{result.stderr}"
        if Path(expand(command, env)[0]).name == "flask":
            assert "Usage:" in result.stdout, f"Procfile {name} did not reach the Flask command"


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_parses_and_its_exec_start_is_a_command_that_exists(name, tmp_path):
    sections = unit(name)
    assert {"Unit", "Service", "Install"} <= set(sections)
    service = sections["Service"]
    for key in ("ExecStart", "User", "WorkingDirectory", "EnvironmentFile", "Restart"):
        assert len(service.get(key, [])) == 1, f"{name}: [Service] needs exactly one {key}="
    assert service["Restart"] == ["always"]
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    argv = shlex.split(service["ExecStart"][0])
    assert argv[0].startswith(service["WorkingDirectory"][0] + "/.venv/bin/"), "run the project's virtualenv"
    env = environment(tmp_path)
    result = answers_help(argv, env)
    assert result.returncode == 0, f"{name}: {service['ExecStart'][0]}\n{result.stdout}\n{result.stderr}"


def test_units_share_one_environment_file_and_the_example_sets_what_production_needs():
    files = {unit(name)["Service"]["EnvironmentFile"][0] for name in UNITS}
    assert files == {"/etc/canary/canary.env"}
    example = dict(line.split("=", 1) for line in (SYSTEMD / "canary.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for required in ("CANARY_ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "MAIL_BACKEND",
                     "MAIL_RATE_PER_SECOND", "TRUSTED_PROXY_COUNT"):
        assert example.get(required), f"canary.env.example does not set {required}"
    assert example["CANARY_ENV"] == "production"


def test_worker_unit_lets_a_job_finish_before_it_is_killed():
    """SIGTERM reaches the worker only (KillMode=mixed), which then finishes
    the job in hand: the stop timeout outlasts the longest job (600 s)."""
    service = unit("canary-worker@.service")["Service"]
    assert service["KillMode"] == ["mixed"]
    assert int(service["TimeoutStopSec"][0]) > 600
    assert "%i" in unit("canary-worker@.service")["Unit"]["Description"][0]
