"""Shared fixtures: unique lab prefixes that are always cleaned up, and readers of kernel state."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsgen.cli import app as cli
from nsgen.render import lab_files, writing
from nsgen.run import emulated_hosts
from nsgen.run.emulated_hosts import Host
from nsgen.validate import sources

REPO = Path(__file__).resolve().parent.parent
GENERATED_PAIR = REPO / "generated" / "pair"


def ip_json(*args: str, netns: str | None = None) -> list[dict]:
    """`ip -j ARGS` (inside `netns` when given), parsed."""
    command = ["ip", "-j", *(["-n", netns] if netns else []), *args]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def netns_names() -> set[str]:
    """The kernel's named network namespaces."""
    return {entry["name"] for entry in ip_json("netns", "list")}


def root_link_names() -> set[str]:
    """The devices of the root namespace."""
    return {entry["ifname"] for entry in ip_json("link", "show")}


def leftovers(prefix: str) -> set[str]:
    """Namespaces and root-namespace devices whose name starts with `prefix`."""
    return {name for name in netns_names() | root_link_names() if name.startswith(prefix)}


def run(
    *command: str | Path, cwd: Path | None = None, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command with stdin closed, capturing its output as text."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=check,
        env=env,
    )


#: Commands that run no script: `nsgen` runs them in this process (a new one costs 0.3 s of imports).
IN_PROCESS = frozenset({"cni", "graph", "init", "plan", "presets", "render", "runtime", "schema", "validate", "version"})


def nsgen(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it: its entry point with these arguments, its exit status and its
    output; in a new process (`python -m nsgen`) for a command that runs a lab's scripts."""
    if not args or str(args[0]) not in IN_PROCESS:
        return run(sys.executable, "-m", "nsgen", *args, cwd=cwd)
    out, err, status = io.StringIO(), io.StringIO(), 0
    saved = os.getcwd(), sys.argv
    try:
        os.chdir(cwd or saved[0])
        sys.argv = ["nsgen", *map(str, args)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else int(done.code is not None)
    finally:
        os.chdir(saved[0])
        sys.argv = saved[1]
    return subprocess.CompletedProcess([str(a) for a in args], status, out.getvalue(), err.getvalue())


@pytest.fixture
def prefix() -> str:
    """A unique name prefix for one test's lab; whatever carries it (or a prefix a test derives from it,
    `t12ab3b-` from `t12ab3-`) is deleted afterwards, pass or fail: what runs in its namespaces, namespaces,
    devices, locks, records, services' files."""
    unique = f"t{uuid.uuid4().hex[:5]}-"
    yield unique
    stem = unique[:-1]
    for name in sorted(netns_names()):
        if name.startswith(stem):  # what still runs there first (a service): it would keep the namespace alive
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False).stdout.split()
            if pids:
                subprocess.run(["kill", "-KILL", *pids], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], check=False)
    for name in sorted(root_link_names()):
        if name.startswith(stem):
            subprocess.run(["ip", "link", "del", name], check=False)
    records = [*Path("/run/nsgen").glob(f"{stem}*.yaml"), *Path("/run/nsgen").glob(f"{stem}*.sysctl")]
    for path in [*Path("/run").glob(f"nsgen-{stem}*.lock"), *records]:
        path.unlink(missing_ok=True)
    for path in Path("/run/nsgen").glob(f"{stem}*/"):  # a lab's services' files
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pair_dir(tmp_path: Path, prefix: str) -> Path:
    """The `pair` preset rendered with the test's prefix."""
    lab_dir = tmp_path / "pair"
    writing.write(lab_files.render(sources.load(preset="pair", prefix=prefix)), lab_dir)
    return lab_dir


@pytest.fixture
def tutorial_pair_dir(tmp_path: Path, prefix: str) -> Path:
    """The `pair` preset rendered in the tutorial style (the guide's command per line) with the test's prefix."""
    lab_dir = tmp_path / "pair-tutorial"
    writing.write(lab_files.render(sources.load(preset="pair", prefix=prefix), "tutorial"), lab_dir)
    return lab_dir


def render_document(document: dict, tmp_path: Path, prefix: str) -> Path:
    """Render a topology document (as parsed YAML) with `prefix` into a fresh directory."""
    lab_dir = tmp_path / document["name"]
    writing.write(lab_files.render(sources.from_document(document, "test", "test", prefix)), lab_dir)
    return lab_dir


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault matrix's totals, printed whether or not output is captured."""
    from test_reliability import MATRIX_TOTALS

    if MATRIX_TOTALS["faults injected"]:
        totals = ", ".join(f"{key}: {value}" for key, value in MATRIX_TOTALS.items())
        terminalreporter.write_line(f"fault matrix: {totals}")


@pytest.fixture
def host(prefix: str) -> Iterator[Host]:
    """One emulated host (its own network namespace, /run and /sys) named by the test's prefix; destroyed afterwards,
    pass or fail."""
    try:
        (made,) = emulated_hosts.create(prefix, 1)
        yield made
    finally:
        emulated_hosts.destroy(prefix)
