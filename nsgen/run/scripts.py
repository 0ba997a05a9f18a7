"""Running a rendered lab's scripts, streaming their output and passing on their exit status."""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from nsgen.render import lab_files, writing
from nsgen.render.styles import Style
from nsgen.validate.sources import LoadedLab


@contextmanager
def rendered(loaded: LoadedLab, style: Style = Style.batched, keep: Path | None = None) -> Iterator[Path]:
    """The lab's scripts in `keep` (left there), or in a temporary directory removed afterwards."""
    with rendered_files(lab_files.render(loaded, style), loaded.lab.name, keep) as lab_dir:
        yield lab_dir


@contextmanager
def rendered_files(
    files: dict[str, str], name: str, keep: Path | None = None, executables: Collection[str] = lab_files.SCRIPTS
) -> Iterator[Path]:
    """Rendered `files` in `keep` (left there), or in a temporary directory removed afterwards."""
    if keep is not None:
        keep = keep.absolute()  # the scripts run from their directory: a relative path would not reach them
        left = writing.write(files, keep, executables)
        if left:
            print(f"nsgen: wrote the scripts into {keep} (left alone, not nsgen's: {', '.join(left)})", file=sys.stderr)
        yield keep
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"nsgen-{name}-"))
    try:
        writing.write(files, scratch / name, executables)
        yield scratch / name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: A line setup.sh prints on large labs: `progress: 30 % (300/1000 namespaces)`.
PROGRESS = re.compile(r"^progress: (\d+) % \((\d+)/(\d+) namespaces\)$")
BAR_WIDTH = 30


def run_script(
    lab_dir: Path, script: str, args: Sequence[str] = (), progress: bool = False, env: dict[str, str] | None = None
) -> int:
    """Run one of the lab's scripts with bash (with `env` added to ours), its output streamed to ours.

    With `progress`, the script's progress lines become a bar redrawn in place on stderr. A Ctrl-C (or
    SIGINT) here is passed on to the script, and its rollback waited for: it is what undoes the run.
    An interrupted run is never said to have passed: a script that ends 0 then is 130 (bash can end
    0 on a SIGINT that comes while a builtin reads a pipe, its trap not run).
    """
    command = ["bash", str(lab_dir / script), *args]
    environment = {**os.environ, **(env or {})}
    output = subprocess.PIPE if progress else None
    interrupted = False
    with subprocess.Popen(command, cwd=lab_dir, stdout=output, text=True, env=environment) as process:
        while True:
            try:
                if process.stdout is not None:
                    _relay(process.stdout)
                status = process.wait()
                status = 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell says it
                return 130 if interrupted and status == 0 else status
            except KeyboardInterrupt:
                interrupted = True
                interrupt(process.pid)  # a second one, in its rollback, it ignores


def interrupt(script: int) -> None:
    """Ctrl-C as a terminal sends it: SIGINT to the script, then to what it runs (its descendants in our
    process group: a service, in a session of its own, is not one). bash acts on a SIGINT that comes
    while it waits for a command only if that command dies of it too; sent to bash alone (nsgen
    itself interrupted by `kill -INT` or `timeout -s INT`), it was lost whenever bash was waiting."""
    group, family = os.getpgrp(), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if int(fields[2]) == group:
            family.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    ordered, index = [script], 0
    while index < len(ordered):
        ordered += family.get(ordered[index], [])
        index += 1
    for pid in ordered:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGINT)


def _relay(lines: Iterable[str]) -> None:
    """A script's output, its progress lines drawn as a bar on stderr."""
    for line in lines:
        match = PROGRESS.match(line.rstrip("\n"))
        if match:
            percent, done, total = map(int, match.groups())
            bar = "#" * (BAR_WIDTH * percent // 100)
            sys.stderr.write(f"\r[{bar:<{BAR_WIDTH}}] {percent:3d} % ({done}/{total} namespaces)")
            sys.stderr.write("\n" if percent == 100 else "")
            sys.stderr.flush()
        else:
            sys.stdout.write(line)
            sys.stdout.flush()


def run_helper(lab_dir: Path, function: str) -> int:
    """Call one of the functions helpers.sh defines (displayLinks, displayAddr, ...)."""
    command = 'source ./helpers.sh && "$1"'
    return subprocess.run(["bash", "-c", command, "nsgen", function], cwd=lab_dir, check=False).returncode
