"""Recording a lab's demo.sh as an asciinema cast, made reproducible, and turning a cast into a GIF.

`asciinema rec` records the demo for real, in a pseudo-terminal of a given size. Its event boundaries
and timings differ from run to run, so unless `raw`, the demo runs with no typing delay and the cast
is rebuilt from its joined output: commands typed at `typing_speed`, output lines at fixed gaps, no
timestamp, a pinned `env`, and a marker (an `m` event, labelled with the step's comment) where each
step starts: players show the steps as chapters. Two recordings of a lab then differ only in what the
kernel picks (a demo part of the guide adds the times, PIDs and names its programs pick).
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nsgen.plan import progress
from nsgen.render.demo_terminal import COMMENT, PROMPT, STEP

#: The `env` of every rebuilt cast's header.
ENV = {"SHELL": "/bin/bash", "TERM": "xterm-256color"}
#: The rebuilt timeline, in microseconds: a pause before each prompt, before the Enter that ends a
#: typed command, the gap between output lines, and the time to read a comment line.
PROMPT_PAUSE, ENTER_PAUSE, LINE_GAP, READING = 600_000, 300_000, 30_000, 1_000_000
AGG_MISSING = "making a GIF needs agg: install nsgen's `gif` extra (pip install 'nsgen[gif]')"


@dataclass(frozen=True)
class CastOptions:
    """How to record: the terminal's size, the cast's title, the typing delay per character in seconds
    (0: commands appear at once), the players' cap on pauses, and whether to keep the real timings."""

    cols: int = 120
    rows: int = 30
    title: str | None = None
    typing_speed: float = 0.04
    idle_time_limit: float | None = None
    raw: bool = False


def record(lab_dir: Path, cast: Path, options: CastOptions = CastOptions(), wrapper: Sequence[str] = ()) -> int:
    """Record `lab_dir`/demo.sh, run by `wrapper` if any (an argv prefix: a sandbox), into `cast`; returns demo.sh's
    exit status (non-zero if it never ran).

    The cast is written even when the demo fails, so that what went wrong can be replayed.
    """
    with tempfile.TemporaryDirectory(prefix="nsgen-record-") as private:
        raw_cast, status_file = Path(private) / "raw.cast", Path(private) / "status"
        delay = options.typing_speed if options.raw else 0
        demo = shlex.join([*wrapper, "bash", "./demo.sh"])
        inner = f"NSGEN_TYPING_DELAY={delay:.6f} {demo}; echo $? >{shlex.quote(str(status_file))}"
        command = [sys.executable, "-m", "asciinema", "rec", "--quiet", "--overwrite", "-c", inner]
        command += ["--cols", str(options.cols), "--rows", str(options.rows)]
        command += ["--title", options.title] if options.title else []
        command += ["--idle-time-limit", str(options.idle_time_limit)] if options.idle_time_limit else []
        env = {**os.environ, **ENV, "HOME": private, "ASCIINEMA_CONFIG_HOME": private}
        # asciinema and the helpers it forks in a process group of their own, ended together on Ctrl-C
        asciinema = subprocess.Popen([*command, str(raw_cast)], cwd=lab_dir, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        try:
            with _ended_as_by_ctrl_c():
                returncode = asciinema.wait()
        except KeyboardInterrupt:  # asciinema is gone: the demo, hung up, deletes what it created
            os.killpg(asciinema.pid, signal.SIGKILL)
            asciinema.wait()
            return 130
        if not raw_cast.exists():
            return returncode or 1
        text = raw_cast.read_text(encoding="utf-8")
        cast.parent.mkdir(parents=True, exist_ok=True)
        cast.write_text(text if options.raw else rebuild(text, options), encoding="utf-8")
        status = status_file.read_text().strip() if status_file.exists() else ""
        return int(status) if status.isdigit() else returncode or 1


@contextmanager
def _ended_as_by_ctrl_c() -> Iterator[None]:
    """A TERM or a hang-up (a job cancelled, a terminal closed) stops the recording as Ctrl-C does, so that what
    was made for it is removed."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def rebuild(cast_text: str, options: CastOptions) -> str:
    """A recorded cast, rebuilt from its joined output on nsgen's fixed timeline (see the module)."""
    fields = json.loads(cast_text.split("\n", 1)[0])
    kept = {key: fields[key] for key in ("version", "width", "height", "idle_time_limit", "title") if key in fields}
    timeline = _timeline(_output(cast_text), options)
    events = [{**kept, "env": ENV}] + [[round(time / 1e6, 6), code, data] for time, code, data in timeline]
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in events)


#: The first line of a step's comment, as demo.sh shows it (`# --- create new namespaces`), its colours.
_STEP = re.compile(re.escape(STEP) + r"(.*?)(\x1b\[[0-9;]*m)?\r?\n?$")


def _timeline(output: str, options: CastOptions) -> Iterator[tuple[int, str, str]]:
    """(microseconds, code, data) of each event: a marker where a step starts, a typed command char by
    char, any other line at once."""
    typing = round(options.typing_speed * 1e6)
    time = 0
    for line in output.splitlines(keepends=True):
        if not line.startswith(PROMPT):
            time += LINE_GAP
            if step := _STEP.match(line):  # labelled with its first words, as `nsgen check` names it
                yield time, "m", progress.short(step.group(1))
            yield time, "o", line
            time += READING if line.startswith(COMMENT) else 0
            continue
        typed = line[len(PROMPT) :].rstrip("\r\n")
        time += PROMPT_PAUSE
        yield time, "o", PROMPT
        for char in typed if typing else [typed]:
            time += typing
            yield time, "o", char
        time += ENTER_PAUSE
        yield time, "o", line[len(PROMPT) + len(typed) :]


def cast_problem(cast: Path) -> str | None:
    """Why `cast` is not an asciinema cast (v2 or v3) to show, or None."""
    if not cast.is_file():
        return "no such file" if not cast.exists() else "not a file"
    try:
        lines = cast.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    header = _json(lines[0]) if lines else None
    if not isinstance(header, dict) or header.get("version") not in (2, 3):
        return "not an asciinema cast (its first line is no asciicast v2 or v3 header)"
    for number, line in enumerate(lines[1:], 2):
        event = _json(line) if line.strip() else [0, "", ""]
        if not (isinstance(event, list) and len(event) == 3 and isinstance(event[0], int | float)
                and isinstance(event[1], str) and isinstance(event[2], str)):
            return f"not a whole asciinema cast (its line {number} is no event: [time, code, data])"
    return None


def _json(text: str) -> object:
    """`text` parsed as JSON; None if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _output(cast_text: str) -> str:
    """All a cast shows on the terminal, joined: its output events' data."""
    events = (json.loads(line) for line in cast_text.splitlines()[1:] if line.strip())
    return "".join(event[2] for event in events if event[1] == "o")


def finished(cast: Path, lab_name: str) -> bool:
    """Whether the demo recorded in `cast` (a whole cast) ran to its end: demo.sh's last word."""
    return f"lab {lab_name}: demo done" in last_lines(cast, 3)


def last_lines(cast: Path, count: int = 8) -> list[str]:
    """The last `count` lines a cast shows, colours dropped: what a failed demo said last."""
    output = _output(cast.read_text(encoding="utf-8"))
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).replace("\r", "").splitlines()[-count:]


def play(cast: Path, pause_on_markers: bool = False) -> int:
    """Replay a cast in this terminal with `asciinema play` (pausing at each step's marker: space goes
    on); its exit status."""
    command = [sys.executable, "-m", "asciinema", "play", *(["--pause-on-markers"] if pause_on_markers else []), str(cast)]
    with tempfile.TemporaryDirectory(prefix="nsgen-play-") as private:
        env = {**os.environ, "HOME": private, "ASCIINEMA_CONFIG_HOME": private}
        return subprocess.run(command, env=env, check=False).returncode


def agg() -> str | None:
    """The `agg` GIF renderer (from the `gif` extra): on PATH, or beside this Python; None if missing."""
    beside = Path(sys.executable).parent / "agg"
    return shutil.which("agg") or (str(beside) if beside.is_file() else None)


def make_gif(cast: Path, gif: Path, renderer: str, idle_time_limit: float | None = None) -> int:
    """Render `cast` as an animated GIF with agg (15 frames a second at most, which keeps it small);
    agg's exit status, and its output on stderr only if it failed (it draws a progress bar)."""
    command = [renderer, "--font-size", "14", "--fps-cap", "15", "--last-frame-duration", "5"]
    command += ["--idle-time-limit", str(idle_time_limit)] if idle_time_limit else []
    done = subprocess.run([*command, str(cast), str(gif)], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr or done.stdout)
    return done.returncode
