"""Commands that enter a lab namespace: exec, shell, capture. Each takes the lab as the others do (a
topology file first, or --preset; else the one lab running), then the node: in a multi-host lab, on
the host that holds it, over SSH (with the remote command's exit status)."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen.cli.options import Count, Prefix, Preset, load, reports_problems
from nsgen.run import node_access
from nsgen.validate.sources import LoadedLab

LabFile = Annotated[Optional[Path], typer.Option("--file", help="Topology YAML file (or give it first).")]
Node = Annotated[str, typer.Argument(help="[FILE] NODE: a namespace of the lab, named as in its topology (e.g. ns-0).")]


def _is_topology(word: str) -> bool:
    """A first argument that names a topology file rather than a node."""
    return word.endswith((".yaml", ".yml")) or Path(word).is_file()


def _lab(file: Path | None, preset: Preset, prefix: str | None, count: int | None) -> LoadedLab:
    return load(file, preset, prefix, count, running=True)


@reports_problems
def exec_command(
    node: Node,
    command: Annotated[Optional[list[str]], typer.Argument(help="The command and its arguments, after `--`.")] = None,
    file: LabFile = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
) -> None:
    """Run a command in a lab namespace (nsgen exec [FILE] ns-0 -- ip addr); exit with its status."""
    words = command or []
    if file is None and _is_topology(node) and words:
        file, node, words = Path(node), words[0], words[1:]
    argv = node_access.exec_argv(_lab(file, preset, prefix, count).lab, node, words)
    os.execvp(argv[0], argv)


@reports_problems
def shell(
    node: Node,
    second: Annotated[Optional[str], typer.Argument(help="The node, when a topology file comes first.")] = None,
    file: LabFile = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
) -> None:
    """Open an interactive bash in a lab namespace (nsgen shell [FILE] ns-0); its prompt names the namespace."""
    if second is not None:
        file, node = Path(node), second
    argv, env = node_access.shell_argv(_lab(file, preset, prefix, count).lab, node)
    os.execvpe(argv[0], argv, {**os.environ, **env})


@reports_problems
def capture(
    target: Annotated[str, typer.Argument(help="[FILE] NODE:IFACE (e.g. ns-0:veth-0), or a lab bridge.")],
    expression: Annotated[Optional[list[str]], typer.Argument(help="A tcpdump filter, e.g. icmp or port 80.")] = None,
    write: Annotated[Optional[Path], typer.Option("--write", "-w", help="Write the packets to this pcap file.")] = None,
    packets: Annotated[Optional[int], typer.Option("--packets", "-c", min=1, help="Stop after this many packets.")] = None,
    file: LabFile = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
) -> None:
    """Capture packets on a lab interface or bridge with tcpdump (nsgen capture [FILE] ns-0:eth0 icmp)."""
    words = expression or []
    if file is None and _is_topology(target) and words:
        file, target, words = Path(target), words[0], words[1:]
    lab = _lab(file, preset, prefix, count).lab
    argv, stdout = node_access.capture_argv(lab, target, words, write, packets)
    if stdout is not None:  # a pcap written on the namespace's host, brought back on ssh's stdout
        os.dup2(os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.execvp(argv[0], argv)
