"""Commands that render files: render, graph, runtime, cni."""

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


def _section_file(name: str) -> str:
    """The file of a section under `nsgen runtime -o`: a core's is named after its script (setup.sh)."""
    return name if name.endswith(".sh") else f"{name}.sh"


def _report(path: Path) -> None:
    """What runtime the rendered script at `path` carries: its sections, each checked against this
    nsgen's, and its marker against its bytes; exit 1 unless all match."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"{path}: {getattr(error, 'strerror', None) or error}", param_hint="'NAME'") from None
    found = templates.carried(text)
    if found is None:
        raise typer.BadParameter(f"{path}: no nsgen runtime in it (no marker line)", param_hint="'NAME'")
    mark = "matches the bytes after it" if found.stated == found.actual else f"does not match the bytes after it ({found.actual})"
    typer.echo(f"{path}: runtime sha256 {found.stated}: {mark}")
    if found.loose:
        what = "no section (rendered by an nsgen before sections)" if not found.sections else "bytes before its first section"
        typer.echo(f"  {what}")
    width = max((len(s.name) for s in found.sections), default=0)
    for carried in found.sections:
        typer.echo(f"  {carried.name:<{width}}  sha256 {carried.stated}  {carried.verdict}")
    if not found.current:
        raise typer.Exit(1)


def _runtime_names(incomplete: str) -> list[str]:
    """Tab completion of NAME: the scripts and the sections (a path completes as the shell's own)."""
    return [name for name in (*templates.SCRIPT_SECTIONS, *templates.SECTIONS) if name.startswith(incomplete)]


@reports_problems
def runtime(
    name: Annotated[
        Optional[str],
        typer.Argument(
            metavar="[NAME]",
            autocompletion=_runtime_names,
            help="A script (setup.sh, teardown.sh, verify.sh, demo.sh, check.sh, apply.sh): print its runtime with every"
            " section it may carry. A section (" + ", ".join(templates.SECTIONS) + "): print it. A rendered script's"
            " path (with a /: ./setup.sh): name the sections it carries and check each against this nsgen's.",
        ),
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write every runtime section into this directory, a file each.")
    ] = None,
    check: Annotated[bool, typer.Option(help="With --output: write nothing; exit 1 if the directory differs.")] = False,
) -> None:
    """A script's runtime is the sections its lab needs (its services, its FORWARD chain and rules, tc,
    sysctls...), each the same bytes in every lab and opened by a line with its sha256, then the
    script's core, under a marker line with the sha256 of all. Without NAME: every section's sha256,
    to check against the lines of rendered scripts; with --output, write them all (generated/runtime/
    holds them, so a change to a runtime is reviewed once)."""
    names = (*templates.SECTIONS, *templates.SCRIPT_SECTIONS)
    if output is not None:
        files = {_section_file(section): templates.section(section) for section in names}
        write_or_check(files, output, (), check, f"wrote the runtime sections into {output}/: {', '.join(files)}")
        return
    if name is None:
        for section in names:
            typer.echo(f"{templates.section_sha256(section)}  {section}")
    elif name in templates.SCRIPT_SECTIONS:
        typer.echo(templates.runtime(name), nl=False)
    elif name in templates.SECTIONS:
        typer.echo(templates.section(name), nl=False)
    elif "/" in name or Path(name).exists():
        _report(Path(name))
    else:
        message = f"{name!r} is no script, section or file (a file in this directory: ./{name})"
        raise typer.BadParameter(message, param_hint="'NAME'")


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
        bool, typer.Option(help="Chain the reference portmap plugin (-p) after nsgen-bridge, where install.sh finds it.")
    ] = cni.CniOptions.portmap,
    is_gateway: Annotated[
        bool, typer.Option("--is-gateway/--no-gateway", help="isGateway: gateway addresses, default routes, forwarding on.")
    ] = cni.CniOptions.is_gateway,
    ip_masq: Annotated[
        bool, typer.Option("--ip-masq/--no-ip-masq", help="ipMasq: masquerade the subnet's traffic leaving the host.")
    ] = cni.CniOptions.ip_masq,
    hairpin: Annotated[
        bool, typer.Option("--hairpin/--no-hairpin", help="hairpinMode: containers reach their own published ports.")
    ] = cni.CniOptions.hairpin,
    subnet6: Annotated[Optional[str], typer.Option(help="IPv6 subnet (CIDR): containers get IPv6 too.")] = None,
    gateway6: Annotated[Optional[str], typer.Option(help="IPv6 gateway [default: the subnet6's first host].")] = None,
    range6: Annotated[Optional[str], typer.Option(help="IPv6 addresses to give out [default: the hosts after it].")] = None,
    check: Check = False,
) -> None:
    """Render a CNI network: the dummy and nsgen-bridge plugins, its conflist, install.sh, containerd/."""
    options = cni.CniOptions(
        name, bridge, subnet, gateway, range_, cni_version, portmap, subnet6, gateway6, range6, is_gateway, ip_masq, hairpin
    )
    out_dir = output or Path("generated") / "cni"
    files = cni.render_cni(options)
    wrote = f"rendered CNI network '{options.name}' into {out_dir}/: {', '.join(files)}"
    write_or_check(files, out_dir, cni.EXECUTABLES, check, wrote)
