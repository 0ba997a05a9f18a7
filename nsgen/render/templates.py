"""The Jinja2 templates: where they are, nsgen's filters (`q` quotes for the shell), and the scripts'
runtime sections (the same bytes in every lab, marked by their sha256)."""

import hashlib
import shlex
from collections.abc import Iterable
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
    env.filters["q"] = lambda value: shlex.quote(str(value))
    env.filters["sh"] = lambda words: " ".join(map(_quoted, words))
    env.filters["array"] = _array
    env.filters["address"] = lambda address: commands.address_words(address)[0]
    env.globals["facts"] = facts.bash_table()  # the fact kinds, for the runtime's comparison
    env.filters["node_id"] = lambda name: "n_" + name.encode().hex()  # Mermaid ids: letters and digits only
    return env


def template(name: str) -> jinja2.Template:
    """A template by its path under templates/, with nsgen's filters (`q` quotes for the shell)."""
    return environment().get_template(name)


#: The marker line that opens a script's runtime section.
RUNTIME_MARKER = "# === nsgen runtime: sha256 {} ==="


@cache
def runtime(script: str) -> str:
    """The runtime section of `script`, marker line included: the same bytes in every lab."""
    body = template(f"runtime/{script}.j2").render()
    return RUNTIME_MARKER.format(hashlib.sha256(body.encode()).hexdigest()) + "\n" + body
