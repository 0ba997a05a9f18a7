"""Shared fixtures: unique lab prefixes that are always cleaned up, and readers of kernel state."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import typer.main
from hypothesis import configuration as hypothesis_configuration

from nsgen.cli import app as cli
from nsgen.render import lab_files, writing
from nsgen.run import emulated_hosts
from nsgen.run.emulated_hosts import Host
from nsgen.validate import sources

REPO = Path(__file__).resolve().parent.parent
GENERATED_PAIR = REPO / "generated" / "pair"

# a suite started in the background by a shell without job control (`pytest … &`) inherits SIGINT ignored, and so
# would every script it runs: bash cannot trap a signal ignored on entry, and the tests of Ctrl-C would fail. Python's
# own handler again: a program it starts gets SIGINT's default
signal.signal(signal.SIGINT, signal.default_int_handler)

# hypothesis keeps its examples out of the checkout (which the tests do not write), in a directory of this user's
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    hypothesis_configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"nsgen-tests-hypothesis-{os.getuid()}")


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


#: Commands that run no script and replace no process: `nsgen` runs them in this process (a new one costs 0.2 s of
#: imports).
IN_PROCESS = frozenset({"cni", "graph", "init", "plan", "presets", "render", "runtime", "schema", "validate", "version"})


def nsgen(*args: str | Path, cwd: Path | None = None, in_process: bool = False) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it: its entry point with these arguments, its exit status and its output.

    In this process for a command of IN_PROCESS, and for any other with `in_process`: a call the test expects to be
    refused, or to run no more than a dry run or a page (there, an exec that would replace the process fails the
    test instead); its output, and that of any program it starts, taken at the file descriptors as a new process's
    would be. Otherwise in a new process (`python -m nsgen`): a command that runs a lab's scripts, records or execs.
    """
    if not in_process and (not args or str(args[0]) not in IN_PROCESS):
        return run(sys.executable, "-m", "nsgen", *args, cwd=cwd)
    status = 0
    saved = os.getcwd(), sys.argv
    with _descriptors_captured() as output, _no_exec(), _command_built_once():
        try:
            os.chdir(cwd or saved[0])
            sys.argv = ["nsgen", *map(str, args)]
            cli.main()
        except SystemExit as done:
            status = done.code if isinstance(done.code, int) else int(done.code is not None)
        finally:
            os.chdir(saved[0])
            sys.argv = saved[1]
    return subprocess.CompletedProcess([str(a) for a in args], status, *output)


@contextlib.contextmanager
def _descriptors_captured() -> Iterator[list[str]]:
    """stdin from /dev/null, stdout and stderr into files (sys.std* and descriptors 0-2, as a new process has them,
    so what a child prints is caught too), restored afterwards; then the list yielded holds what each got."""
    output: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    streams, kept = (sys.stdin, sys.stdout, sys.stderr), [os.dup(fd) for fd in (0, 1, 2)]
    with open(os.devnull, "rb") as devnull, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            for fd, file in enumerate((devnull, out, err)):
                os.dup2(file.fileno(), fd)
            with (  # closefd=False: closing these leaves descriptors 0-2 open
                open(0, encoding="utf-8", closefd=False) as sys.stdin,
                open(1, "w", encoding="utf-8", buffering=1, closefd=False) as sys.stdout,
                open(2, "w", encoding="utf-8", buffering=1, closefd=False) as sys.stderr,
            ):
                yield output
        finally:
            for fd, original in enumerate(kept):
                os.dup2(original, fd)
                os.close(original)
            sys.stdin, sys.stdout, sys.stderr = streams
            for file in (out, err):
                file.seek(0)
                output.append(file.read().decode("utf-8", "replace"))


#: The click command typer builds of an app (by the app's id), built once in a session.
_COMMANDS: dict[int, typer.main._click.Command] = {}


@contextlib.contextmanager
def _command_built_once() -> Iterator[None]:
    """typer builds its click command anew at each call of an app (20 ms, for nsgen's commands): it is built once,
    then the same command object parses each call's arguments, as click's commands are meant to."""
    build = typer.main.get_command

    def built(app: typer.Typer) -> typer.main._click.Command:
        if id(app) not in _COMMANDS:
            _COMMANDS[id(app)] = build(app)
        return _COMMANDS[id(app)]

    typer.main.get_command = built
    try:
        yield
    finally:
        typer.main.get_command = build


@contextlib.contextmanager
def _no_exec() -> Iterator[None]:
    """os.exec* fail (AssertionError) rather than replace this process, pytest and all."""

    def refused(*args: object) -> None:
        raise AssertionError(f"nsgen, run in the tests' process, would replace it: exec {args!r}")

    names = ("execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe")
    saved = {name: getattr(os, name) for name in names}
    try:
        for name in names:
            setattr(os, name, refused)
        yield
    finally:
        for name, function in saved.items():
            setattr(os, name, function)


#: Digests of scripts (with shellcheck's options) shellcheck found clean in this session: each is checked once.
_SHELLCHECKED: set[str] = set()


def shellcheck(*paths: str | Path, options: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """`shellcheck OPTIONS PATHS`: its exit status and findings as one run of it gives them, sooner. The files are
    spread over the CPUs, and one with the bytes and suffix of a file found clean with the same options earlier in
    the session is not checked again: a file's findings are its own (these scripts source none, and no .shellcheckrc
    sits in the checkout or the temp directories)."""
    assert paths, "shellcheck needs a file to check"
    digests = {}
    for path in map(Path, paths):
        key = "\0".join([*options, path.suffix, hashlib.sha256(path.read_bytes()).hexdigest()])
        digests[path] = hashlib.sha256(key.encode()).hexdigest()
    todo = sorted((path for path, digest in digests.items() if digest not in _SHELLCHECKED), key=lambda p: -p.stat().st_size)
    chunks: list[list[Path]] = [[] for _ in range(min(os.cpu_count() or 1, len(todo)))]
    sizes = [0] * len(chunks)
    for path in todo:  # the largest first, each into the lightest chunk
        lightest = sizes.index(min(sizes))
        chunks[lightest].append(path)
        sizes[lightest] += path.stat().st_size
    runs = [(chunk, subprocess.Popen(["shellcheck", *options, *map(str, chunk)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for chunk in chunks]
    status, stdout, stderr = 0, [], []
    for chunk, process in runs:
        out, err = process.communicate()
        status = max(status, process.returncode)
        stdout.append(out)
        stderr.append(err)
        if process.returncode == 0:
            _SHELLCHECKED.update(digests[path] for path in chunk)
    return subprocess.CompletedProcess(["shellcheck", *options, *map(str, paths)], status, "".join(stdout), "".join(stderr))


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
    records += Path("/run/nsgen").glob(f"{stem}*.forward")  # --allow-forward's record
    records += Path("/run/nsgen-multihost").glob(f"{stem}*.yaml")  # a multi-host lab's, on the controller
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
