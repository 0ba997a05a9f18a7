"""The `nsgen` command line: one Typer app whose commands live in a module per group (authoring,
rendering, lab, change, docs, node, hosts), each thin, calling the stages."""

import contextlib
import functools
import gc
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer 0.28 carries its own click (pinned)

from nsgen.cli import authoring


def _options(
    version: Annotated[
        bool, typer.Option("--version", help="Print nsgen's version and exit.", is_eager=True, callback=authoring.print_version)
    ] = False,
) -> None:
    """Turn a network-namespace topology into standalone, reviewable bash scripts, and run them."""


#: Every command, in the order `nsgen --help` lists them, by name: its module (of nsgen.cli) and function.
#: A command's module is imported when it runs: `nsgen render` does not import what `nsgen up` or `nsgen
#: record` need (all of them for --help, completion, or a name that is not a command).
COMMANDS = {
    "presets": ("authoring", "presets_command"),
    "init": ("authoring", "init"),
    "validate": ("authoring", "validate"),
    "render": ("rendering", "render"),
    "up": ("lab", "up"),
    "down": ("lab", "down"),
    "verify": ("lab", "verify"),
    "demo": ("lab", "demo"),
    "record": ("docs", "record"),
    "play": ("docs", "play"),
    "docs": ("docs", "docs"),
    "graph": ("rendering", "graph"),
    "status": ("lab", "status"),
    "check": ("learn", "check"),
    "lesson": ("learn", "lesson"),
    "plan": ("change", "plan_command"),
    "apply": ("change", "apply_command"),
    "cni": ("rendering", "cni_command"),
    "runtime": ("rendering", "runtime"),
    "schema": ("authoring", "schema"),
    "version": ("authoring", "version"),
    "exec": ("node", "exec_command"),
    "shell": ("node", "shell"),
    "capture": ("node", "capture"),
}

#: The group of commands registered before them: emulated hosts, to try a multi-host lab on one machine.
HOSTS = "hosts"


@functools.cache
def build(only: str | None = None) -> typer.Typer:
    """The app: every command, or only the command (or group) named `only`, the one a run asked for;
    built once a process (main() runs again in the tests' process, each time the same app)."""
    app = typer.Typer(
        help="Turn a network-namespace topology into standalone, reviewable bash scripts, and run them.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_options)
    if only in (None, HOSTS):
        from nsgen.cli import hosts

        app.add_typer(hosts.app, name=HOSTS)
    for name, (module, function) in COMMANDS.items():
        if only in (None, name):
            app.command(name)(getattr(importlib.import_module(f"nsgen.cli.{module}"), function))
    return app


def __getattr__(name: str) -> Any:
    """`app`: the app with every command (what tests and `typer.testing` drive), built on first use."""
    if name == "app":
        return build()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _asked_for(argv: list[str]) -> str | None:
    """The command (or group) a command line names first, when only it need be registered: not for
    completion (which lists them all), --help, --version, or a word that is not a command."""
    if len(argv) < 2 or "_NSGEN_COMPLETE" in os.environ:
        return None
    return argv[1] if argv[1] in COMMANDS or argv[1] == HOSTS else None


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one command: a command builds the lab's model, plans
    and scripts (hundreds of thousands of objects, no reference cycles among them) and exits, and
    the collector kept re-scanning all of them as they grew: 0.85 s of a 2.3 s render of 5000
    namespaces, for no memory back (the peak is 96 MB either way). Reference counting still frees
    everything; the collector is on again afterwards (the tests call main() in-process)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def main() -> None:
    """Console-script entry point: a usage error (a bad option or value) is one line and exit 2."""
    try:
        app = build(_asked_for(sys.argv))
        with _cyclic_gc_paused():
            status = app(standalone_mode=False, prog_name="nsgen")
    except NoArgsIsHelpError as error:  # bare `nsgen`, or a group without its command: the help
        typer.echo(error.ctx.get_help() if error.ctx is not None else "")
        sys.exit(0)
    except UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else "nsgen"
        typer.echo(f"{where}: {' '.join(error.format_message().split())} (see {where} --help)", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):  # a Ctrl-C before or after a script runs (during one, it is passed on)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
