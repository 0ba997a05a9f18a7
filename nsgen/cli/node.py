"""Commands that enter a lab namespace: exec, shell, capture."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen.cli.options import Count, Prefix, Preset, load, one_machine, reports_problems
from nsgen.run import node_access

LabFile = Annotated[Optional[Path], typer.Option("--file", help="Topology YAML file (default: --preset).")]
Node = Annotated[str, typer.Argument(help="A namespace of the lab, named as in its topology (e.g. ns-0).")]


@reports_problems
def exec_command(
    node: Node,
    command: Annotated[Optional[list[str]], typer.Argument(help="The command and its arguments, after `--`.")] = None,
    file: LabFile = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
) -> None:
    """Run a command in a lab namespace (nsgen exec ns-0 -- ip addr); exit with its status."""
    argv = node_access.exec_argv(one_machine(load(file, preset, prefix, count), "exec").lab, node, command or [])
    os.execvp(argv[0], argv)


@reports_problems
def shell(node: Node, file: LabFile = None, preset: Preset = None, prefix: Prefix = None, count: Count = None) -> None:
    """Open an interactive bash in a lab namespace; its prompt names the namespace."""
    argv, env = node_access.shell_argv(one_machine(load(file, preset, prefix, count), "shell").lab, node)
    os.execvpe(argv[0], argv, {**os.environ, **env})


@reports_problems
def capture(
    target: Annotated[str, typer.Argument(help="NODE:IFACE, e.g. ns-0:veth-0.")],
    write: Annotated[Optional[Path], typer.Option("--write", "-w", help="Write the packets to this pcap file.")] = None,
    packets: Annotated[Optional[int], typer.Option("--packets", "-c", min=1, help="Stop after this many packets.")] = None,
    file: LabFile = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
) -> None:
    """Capture packets on a lab interface with tcpdump, inside its namespace."""
    argv = node_access.capture_argv(one_machine(load(file, preset, prefix, count), "capture").lab, target, write, packets)
    os.execvp(argv[0], argv)
