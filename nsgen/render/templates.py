"""The Jinja2 templates: where they are, nsgen's filters (`q` quotes for the shell), and the scripts'
runtimes: the sections a lab's script needs, each the same bytes in every lab and marked by its
sha256, its core last, under one marker line whose sha256 covers them all."""

import hashlib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from nsgen.plan import commands
from nsgen.topology import facts


def templates_dir() -> Path:
    """Templates ship inside the wheel as `nsgen/templates`; in a source checkout they sit beside the package."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nsgen templates not found next to {package}")


#: Arrays of names in the scripts wrap at this width.
ARRAY_WIDTH = 100


#: shlex.quote, remembered: a lab's scripts quote the same few words thousands of times.
_quoted = cache(shlex.quote)


def _heredoc(lines: Iterable[Iterable[str]]) -> str:
    """Commands (each a line of quoted words, indented) as a quoted here-doc: `<<'END'`, the lines,
    END, where END is a word no line is (a quoted word may hold a newline)."""
    text = "\n".join("  " + " ".join(map(_quoted, words)) for words in lines)
    end = "NSGEN"
    while f"\n{end}\n" in f"\n{text}\n":
        end += "_"
    return f"<<'{end}'\n{text}\n{end}"


def _array(words: Iterable[str]) -> str:
    """Words quoted for a bash array, wrapped onto indented lines when they are many."""
    lines: list[str] = []
    for word in map(_quoted, words):
        if lines and len(lines[-1]) + len(word) < ARRAY_WIDTH:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) <= 1:
        return "".join(lines)
    return "".join(f"\n  {line}" for line in lines) + "\n"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # bash's `${#array[@]}` would open a Jinja comment: templates write comments as {## … ##}
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters["q"] = lambda value: _quoted(str(value))
    env.filters["sh"] = lambda words: " ".join(map(_quoted, words))
    env.filters["array"] = _array
    env.filters["heredoc"] = _heredoc
    env.filters["address"] = lambda address: commands.address_words(address)[0]
    env.globals["facts"] = facts.bash_table()  # the fact kinds, for the runtime's comparison
    env.globals["check_seconds"] = commands.CHECK_SECONDS  # how long a check of each kind may take
    env.filters["node_id"] = lambda name: "n_" + name.encode().hex()  # Mermaid ids: letters and digits only
    return env


def template(name: str) -> jinja2.Template:
    """A template by its path under templates/, with nsgen's filters (`q` quotes for the shell)."""
    return environment().get_template(name)


#: The marker line that opens a script's runtime: the sha256 of every byte after it (all its sections).
RUNTIME_MARKER = "# === nsgen runtime: sha256 {} ==="

#: The line that opens each section of a runtime: its name and the sha256 of its own bytes after
#: it, up to the next section's line (or the end).
SECTION_MARKER = "# --- nsgen runtime section {}: sha256 {} ---"
SECTION_LINE = re.compile(r"^# --- nsgen runtime section (\S+): sha256 ([0-9a-f]{64}) ---$", re.M)

#: The sections a runtime may carry besides its script's core, in the order they come, each the same
#: bytes in every script and lab that carries it (templates/runtime/_NAME.sh.j2): each defines
#: functions and adds to the hooks its script's core runs (preflight_hooks, start_hooks, ...).
SECTIONS = ("facts", "parents", "services", "forward", "rules", "accepts", "tc", "sysctl", "ipv6", "stop")

#: The scripts with a runtime, each with the sections it may carry (nsgen.render.lab_files decides
#: which a lab's carries); its core (templates/runtime/SCRIPT.j2), a section named after the
#: script, comes last and runs it.
SCRIPT_SECTIONS = {
    "setup.sh": ("parents", "services", "forward", "rules", "tc", "sysctl", "ipv6"),
    "teardown.sh": ("services", "rules", "sysctl", "stop"),
    "verify.sh": ("facts",),
    "demo.sh": ("parents", "services", "forward", "rules", "tc", "sysctl", "stop"),
    "check.sh": ("facts",),
    "apply.sh": ("facts", "services", "forward", "rules", "accepts", "tc", "sysctl", "ipv6", "stop"),
    "status.sh": ("facts",),  # a multi-host lab's host's (nsgen.render.multihost)
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def section(name: str) -> str:
    """The runtime section `name` (of SECTIONS, or a script's core), its line included: the same
    bytes in every lab."""
    body = template(f"runtime/{name}.j2" if name in SCRIPT_SECTIONS else f"runtime/_{name}.sh.j2").render()
    return SECTION_MARKER.format(name, _sha256(body)) + "\n" + body


def section_sha256(name: str) -> str:
    """The sha256 the line of section `name` states (of its bytes after that line)."""
    return section(name).split("\n", 1)[0].split()[-2]


@cache
def runtime(script: str, sections: tuple[str, ...] | None = None) -> str:
    """The runtime of `script` carrying `sections` (default: every one it may carry) in SECTIONS'
    order, its core last, under the marker line."""
    chosen = SCRIPT_SECTIONS[script] if sections is None else sections
    if not set(chosen) <= set(SCRIPT_SECTIONS[script]):
        raise ValueError(f"{script} carries no section {sorted(set(chosen) - set(SCRIPT_SECTIONS[script]))}")
    body = "".join(section(name) for name in (*(s for s in SECTIONS if s in chosen), script))
    return RUNTIME_MARKER.format(_sha256(body)) + "\n" + body


@dataclass(frozen=True)
class Carried:
    """A section a rendered script carries: its name, the sha256 its line states, the sha256 of its
    bytes, and this nsgen's section of that name (its sha256; None: this nsgen has none)."""

    name: str
    stated: str
    actual: str
    ours: str | None

    @property
    def verdict(self) -> str:
        if self.actual != self.stated:
            return f"edited: its bytes' sha256 is {self.actual}"
        if self.ours is None:
            return "not a section of this nsgen"
        return "this nsgen's" if self.ours == self.stated else f"not this nsgen's (this nsgen's: {self.ours})"


@dataclass(frozen=True)
class CarriedRuntime:
    """A rendered script's runtime: the sha256 its marker states and that of the bytes after it, any
    bytes before its first section (`loose`), and its sections in order."""

    stated: str
    actual: str
    loose: str
    sections: tuple[Carried, ...]

    @property
    def current(self) -> bool:
        """Unedited, and every section this nsgen's."""
        sections_ok = all(s.verdict == "this nsgen's" for s in self.sections)
        return self.stated == self.actual and not self.loose and bool(self.sections) and sections_ok


def carried(text: str) -> CarriedRuntime | None:
    """The runtime a rendered script carries (None: it has no marker line)."""
    marker = re.search(r"^# === nsgen runtime: sha256 ([0-9a-f]{64}) ===\n", text, re.M)
    if marker is None:
        return None
    rest = text[marker.end() :]
    lines = list(SECTION_LINE.finditer(rest))
    ends = [line.start() for line in lines[1:]] + [len(rest)] * bool(lines)
    ours = {name: section_sha256(name) for name in (*SECTIONS, *SCRIPT_SECTIONS)}
    sections = tuple(
        Carried(line[1], line[2], _sha256(rest[line.end() + 1 : end]), ours.get(line[1]))
        for line, end in zip(lines, ends, strict=True)
    )
    return CarriedRuntime(marker[1], _sha256(rest), rest[: lines[0].start()] if lines else rest, sections)
