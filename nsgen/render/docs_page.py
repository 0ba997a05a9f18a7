"""A lab's static HTML page, working offline from file://: its demo's cast in asciinema-player (vendored
beside the page, the cast inlined), its topology diagram, and its scripts with line numbers."""

import json
from functools import cache
from pathlib import Path

import jinja2

from nsgen import __version__
from nsgen.render import diagram, lab_files, templates
from nsgen.render.demo_terminal import PROMPT
from nsgen.validate.sources import LoadedLab

#: The rendered files the page shows, in order.
SHOWN = (lab_files.TOPOLOGY, "setup.sh", "verify.sh", "teardown.sh", "helpers.sh", "demo.sh", "check.sh")
#: The player's files, copied beside the page (its licence under a name of its own).
PLAYER = {"asciinema-player.min.js": "asciinema-player.min.js", "asciinema-player.css": "asciinema-player.css",
          "LICENSE": "asciinema-player.LICENSE"}


@cache
def environment() -> jinja2.Environment:
    """The pages' Jinja2 environment: HTML, autoescaped."""
    loader = jinja2.FileSystemLoader(templates.templates_dir())
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True)


def events(cast_text: str) -> list[tuple[float, str, str]]:
    """A cast's events, each at its time from the start (an asciicast v3 gives the time since the event before)."""
    header, *lines = cast_text.splitlines()
    relative, time = json.loads(header).get("version") == 3, 0.0
    result = []
    for line in filter(str.strip, lines):
        at, code, data = json.loads(line)
        time = time + at if relative else at
        result.append((time, code, data))
    return result


def first_command_end(cast_text: str) -> float:
    """When the cast's first typed command has been entered (0 if it has none): the player's poster."""
    typing = False
    for time, kind, data in events(cast_text):
        typing = typing or (kind == "o" and data.startswith(PROMPT))
        if typing and "\n" in data:
            return time
    return 0


def chapters(cast_text: str) -> list[tuple[float, str]]:
    """The cast's markers (the demo's steps, as `nsgen record` writes them): time in seconds, label."""
    return [(time, label) for time, code, label in events(cast_text) if code == "m"]


def page(loaded: LoadedLab, cast_text: str, cast_name: str, guide_part: str | None = None) -> str:
    """The page's HTML (as a part of the guide's pages, with `guide_part` its title): the same lab and cast always
    give the same bytes."""
    files = lab_files.render(loaded)
    return environment().get_template("docs/lab.html.j2").render(
        guide_part=guide_part,
        lab=loaded.lab,
        origin=loaded.origin,
        version=__version__,
        cast=cast_text,
        cast_name=cast_name,
        poster=first_command_end(cast_text),
        chapters=chapters(cast_text),
        diagram=diagram.graph(loaded, "mermaid"),
        scripts=[(name, files[name]) for name in SHOWN],
    )


def files(loaded: LoadedLab, cast: Path, guide_part: str | None = None) -> dict[str, str]:
    """The page (index.html), the cast and the player, by name."""
    cast_text = cast.read_text(encoding="utf-8")
    cast_name = f"{loaded.lab.name}.cast"
    return player() | {cast_name: cast_text, "index.html": page(loaded, cast_text, cast_name, guide_part)}


def player() -> dict[str, str]:
    """The player's files, to copy beside a page, by name."""
    vendored = templates.templates_dir() / "vendor" / "asciinema-player"
    return {name: (vendored / source).read_text(encoding="utf-8") for source, name in PLAYER.items()}
