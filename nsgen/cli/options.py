"""What the commands share: the lab-source options (file, --preset, --prefix, --count), the other
common options, one-line problem reports, and the write-or-check of a rendered directory."""

import functools
from collections.abc import Callable, Collection
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from nsgen.problems import Problem, TopologyError
from nsgen.render import multihost, writing
from nsgen.render.styles import Style
from nsgen.run import records
from nsgen.topology import presets
from nsgen.validate import sources

#: The built-in labs, as a choice typer lists in --help and checks.
PresetName = Enum("PresetName", {name: name for name in presets.PRESETS}, type=str)  # type: ignore[misc]

File = Annotated[Optional[Path], typer.Argument(help="Topology YAML file.", show_default=False)]
Preset = Annotated[Optional[PresetName], typer.Option("--preset", "-p", help="Built-in lab (see `nsgen presets`).")]
Prefix = Annotated[Optional[str], typer.Option(help="Prepended to every namespace and root-namespace device name.")]
Count = Annotated[Optional[int], typer.Option("--count", "-n", help="A preset's size (its namespaces, or a side's).")]
StyleOption = Annotated[
    Style, typer.Option(help="setup.sh as `batched` (fast at any size) or `tutorial` (the guide's command per line).")
]
WorkDir = Annotated[
    Optional[Path], typer.Option("--workdir", help="Render the scripts here and keep them (default: a temp dir).")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the commands the script would run; change nothing.")]
Check = Annotated[bool, typer.Option(help="Write nothing; exit 1 if the directory differs.")]

F = TypeVar("F", bound=Callable[..., Any])


def reports_problems(command: F) -> F:
    """Print a TopologyError (one line per problem) or an OutputError on stderr and exit 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TopologyError as error:
            for problem in error.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None
        except writing.OutputError as error:
            typer.echo(f"nsgen {command.__name__.removesuffix('_command')}: {error}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


class NoLabRunning(TopologyError):
    """A command that acts on the running lab, given none, when none is recorded as running."""

    def __init__(self, prefix: str | None):
        self.what = f"no lab{f' of prefix {prefix!r}' if prefix else ''} is running"
        super().__init__([Problem("nsgen", "", f"{self.what}: give its topology file or --preset")])


def load(
    file: Path | None, preset: PresetName | None, prefix: str | None = None, count: int | None = None, running: bool = False
) -> sources.LoadedLab:
    """The lab of the lab-source options: a file, or a preset (default: pair) at a size. With
    `running` (a command that acts on a running lab) and neither, the lab recorded as running under
    /run/nsgen when there is one (of `prefix`, if given); several: they are named, and exit 2."""
    if file is not None and (preset is not None or count is not None):
        raise TopologyError([Problem(str(file), "", "give a topology file, or --preset (with --count), not both")])
    if running and file is None and preset is None and count is None:
        labs = [loaded for loaded in records.running() if prefix is None or loaded.lab.prefix == prefix]
        if not labs:
            raise NoLabRunning(prefix)
        if len(labs) == 1:
            return labs[0]
        names = ", ".join(f"'{loaded.lab.prefix}{loaded.lab.name}'" for loaded in labs)
        message = f"{len(labs)} labs are running ({names}): name one with its topology file or --preset (and --prefix)"
        raise TopologyError([Problem("nsgen", "", message)])
    return sources.load(file, preset.value if preset is not None else None, prefix, count)


def one_machine(loaded: sources.LoadedLab, command: str) -> sources.LoadedLab:
    """A command that works on this machine's namespaces refuses a multi-host lab, in one line."""
    if multihost.is_multihost(loaded.lab):
        message = (
            f"a multi-host lab: nsgen {command} works on a one-machine lab; on the hosts, instead: nsgen up, verify,"
            " status, check, exec, plan, apply, down"
        )
        raise TopologyError([Problem(loaded.origin, "hosts", message)])
    return loaded


def write_or_check(files: dict[str, str], out_dir: Path, executables: Collection[str], check: bool, wrote: str) -> None:
    """Write `files` into `out_dir` and say `wrote`; with `check`, write nothing and exit 1 if it differs."""
    if check:
        stale = writing.differences(files, out_dir, executables)
        if stale:
            typer.echo(f"{out_dir}: differs from what nsgen renders: {', '.join(stale)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out_dir}: up to date")
        return
    left = writing.write(files, out_dir, executables)
    typer.echo(wrote + (f" (left alone, not nsgen's: {', '.join(left)})" if left else ""))
