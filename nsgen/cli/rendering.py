"""Commands that render files: render, graph, runtime, cni."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen.cli.options import Check, Count, File, Prefix, Preset, StyleOption, load, reports_problems, write_or_check
from nsgen.render import cni, diagram, lab_files, multihost, templates
from nsgen.render.styles import Style


@reports_problems
def render(
    file: File = None,
    preset: Preset = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Directory to write (default: generated/LAB).")] = None,
    prefix: Prefix = None,
    count: Count = None,
    style: StyleOption = Style.batched,
    check: Check = False,
) -> None:
    """Render the lab's scripts (default: the `pair` preset into generated/pair/)."""
    loaded = load(file, preset, prefix, count)
    out_dir = output or Path("generated") / loaded.lab.name
    multi = multihost.is_multihost(loaded.lab)  # one directory per host, and the Ansible playbook
    files = multihost.render(loaded, style) if multi else lab_files.render(loaded, style)
    executables = multihost.executables(loaded.lab) if multi else lab_files.SCRIPTS
    write_or_check(files, out_dir, executables, check, f"rendered lab '{loaded.lab.name}' into {out_dir}/: {', '.join(files)}")


@reports_problems
def graph(
    file: File = None,
    preset: Preset = None,
    count: Count = None,
    fmt: Annotated[diagram.GraphFormat, typer.Option("--format", "-f", help="The diagram's language.")] = (
        diagram.GraphFormat.mermaid
    ),
) -> None:
    """Print the lab's topology as a Mermaid or Graphviz DOT diagram."""
    typer.echo(diagram.graph(load(file, preset, None, count), fmt), nl=False)


class RuntimeScript(str, Enum):
    """The scripts whose runtime section is the same in every lab."""

    setup = "setup.sh"
    teardown = "teardown.sh"
    verify = "verify.sh"
    demo = "demo.sh"
    check = "check.sh"
    apply = "apply.sh"


@reports_problems
def runtime(
    script: Annotated[Optional[RuntimeScript], typer.Argument(help="Print this script's runtime section.")] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write every runtime section into this directory.")
    ] = None,
    check: Annotated[bool, typer.Option(help="With --output: write nothing; exit 1 if the directory differs.")] = False,
) -> None:
    """Print a script's runtime section (its marker line holds the sha256 of the rest), or every
    script's runtime sha256, to check against the marker lines of rendered scripts; with --output,
    write them all (generated/runtime/ holds them, so a change to a runtime is reviewed once)."""
    if output is not None:
        files = {kind.value: templates.runtime(kind.value) for kind in RuntimeScript}
        write_or_check(files, output, (), check, f"wrote the runtime sections into {output}/: {', '.join(files)}")
        return
    if script is not None:
        typer.echo(templates.runtime(script.value), nl=False)
        return
    for kind in RuntimeScript:
        marker = templates.runtime(kind.value).split("\n", 1)[0]
        typer.echo(f"{marker.split()[5]}  {kind.value}")



@reports_problems
def cni_command(
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Directory to write (default: generated/cni).")
    ] = None,
    name: Annotated[str, typer.Option(help="CNI network name.")] = cni.CniOptions.name,
    bridge: Annotated[str, typer.Option(help="Linux bridge on the host (at most 15 characters).")] = cni.CniOptions.bridge,
    subnet: Annotated[str, typer.Option(help="IPv4 subnet of the network (CIDR).")] = cni.CniOptions.subnet,
    gateway: Annotated[
        Optional[str], typer.Option(help="The bridge's address, the containers' gateway [default: the first host].")
    ] = None,
    range_: Annotated[
        Optional[str], typer.Option("--range", help="Addresses to give out, as FIRST-LAST [default: the hosts after it].")
    ] = None,
    cni_version: Annotated[
        str, typer.Option(help="cniVersion of the config (results follow it); 1.1.0 adds STATUS and GC.")
    ] = cni.CniOptions.cni_version,
    portmap: Annotated[
        bool, typer.Option(help="Chain the reference portmap plugin after nsgen-bridge.")
    ] = cni.CniOptions.portmap,
    subnet6: Annotated[Optional[str], typer.Option(help="IPv6 subnet (CIDR): containers get IPv6 too.")] = None,
    gateway6: Annotated[Optional[str], typer.Option(help="IPv6 gateway [default: the subnet6's first host].")] = None,
    range6: Annotated[Optional[str], typer.Option(help="IPv6 addresses to give out [default: the hosts after it].")] = None,
    check: Check = False,
) -> None:
    """Render a CNI network: the dummy and nsgen-bridge plugins, its conflist, install.sh, containerd/."""
    options = cni.CniOptions(name, bridge, subnet, gateway, range_, cni_version, portmap, subnet6, gateway6, range6)
    out_dir = output or Path("generated") / "cni"
    files = cni.render_cni(options)
    wrote = f"rendered CNI network '{options.name}' into {out_dir}/: {', '.join(files)}"
    write_or_check(files, out_dir, cni.EXECUTABLES, check, wrote)
