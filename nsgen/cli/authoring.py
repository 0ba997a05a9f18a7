"""Commands for writing a topology: presets, init, validate, schema, version."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen import __version__
from nsgen.cli.options import Count, PresetName, reports_problems
from nsgen.problems import Problem, TopologyError
from nsgen.topology import presets, yaml_file
from nsgen.topology.schema import SCHEMA
from nsgen.validate import sources

DEFAULT = PresetName(presets.DEFAULT_PRESET)


def presets_command() -> None:
    """List the built-in labs, one line each."""
    for preset in presets.PRESETS.values():
        size = f"(--count, default {preset.default_count})" if preset.default_count else ""
        typer.echo(f"{preset.name:<8} {preset.summary} {size}".rstrip())


@reports_problems
def init(
    preset: Annotated[PresetName, typer.Option("--preset", "-p", help="Built-in lab to start from.")] = DEFAULT,
    count: Count = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a preset as an editable YAML topology."""
    document = presets.build(preset.value, count)
    sources.from_document(document, f"--preset {preset.value}", "init")  # only what `nsgen validate` accepts
    text = (
        f"# nsgen topology, from the preset '{preset.value}'. Check it with `nsgen validate FILE`;\n"
        "# the format is described by `nsgen schema`.\n" + yaml_file.dump(document)
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise TopologyError([Problem(str(output), "", "exists already (use --force to overwrite it)")])
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


@reports_problems
def validate(file: Annotated[Path, typer.Argument(help="Topology YAML file.")]) -> None:
    """Check a topology: exit 0, or one line per problem and exit 2."""
    lab = sources.load(file).lab
    counted = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in ((len(lab.namespaces), "namespace"), (len(lab.links), "link"))]
    typer.echo(f"{file}: ok: lab '{lab.name}', {', '.join(counted)}")


def schema() -> None:
    """Print the JSON Schema of the topology format."""
    typer.echo(json.dumps(SCHEMA, indent=2))


def version() -> None:
    """Print nsgen's version."""
    typer.echo(__version__)


def print_version(wanted: bool) -> None:
    """`nsgen --version`: the version, then exit."""
    if wanted:
        typer.echo(__version__)
        raise typer.Exit(0)
