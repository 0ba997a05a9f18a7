"""The `nsgen` command line: presets, init, validate, render, up, down, verify, demo, status, graph,
record, play, docs, cni, schema, exec, shell, capture."""

import contextlib
import functools
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from typer._click.exceptions import UsageError  # typer 0.28 carries its own click (pinned)

from nsgen import __version__
from nsgen.cli import hosts
from nsgen.plan import change_plan
from nsgen.plan import declared as drift
from nsgen.problems import Problem, TopologyError
from nsgen.render import cni, diagram, docs_page, lab_files, multihost, templates, writing
from nsgen.render.styles import Style
from nsgen.run import node_access, recording, records, scripts
from nsgen.topology import presets, yaml_file
from nsgen.topology.model import Lab
from nsgen.topology.schema import SCHEMA
from nsgen.validate import sources

app = typer.Typer(
    help="Turn a network-namespace topology into standalone, reviewable bash scripts, and run them.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(hosts.app, name="hosts")  # emulated hosts, to try a multi-host lab on one machine



def _preset_names(incomplete: str) -> list[str]:
    """Shell completion of --preset."""
    return [name for name in presets.PRESETS if name.startswith(incomplete)]


File = Annotated[Optional[Path], typer.Argument(help="Topology YAML file.", show_default=False)]
Preset = Annotated[
    Optional[str],
    typer.Option("--preset", "-p", help="Built-in lab (see `nsgen presets`).", autocompletion=_preset_names),
]
Prefix = Annotated[
    Optional[str], typer.Option(help="Prepended to every namespace and root-namespace device name.")
]
Count = Annotated[
    Optional[int], typer.Option("--count", "-n", help="Size of a preset that has one (namespaces, hosts a side).")
]
StyleOption = Annotated[
    Style, typer.Option(help="setup.sh as `batched` (fast at any size) or `tutorial` (the guide's command per line).")
]
WorkDir = Annotated[
    Optional[Path], typer.Option("--workdir", help="Render the scripts here and keep them (default: a temp dir).")
]

F = TypeVar("F", bound=Callable[..., Any])


def reports_problems(command: F) -> F:
    """Print a TopologyError as one line per problem on stderr and exit 2, without a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TopologyError as error:
            for problem in error.problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _load(
    file: Path | None, preset: str | None, prefix: str | None = None, count: int | None = None
) -> sources.LoadedLab:
    if file is not None and (preset is not None or count is not None):
        raise TopologyError([Problem(str(file), "", "give a topology file, or --preset (with --count), not both")])
    return sources.load(file, preset, prefix, count)


def _one_machine(loaded: sources.LoadedLab, command: str) -> sources.LoadedLab:
    """A command that works on this machine's namespaces refuses a multi-host lab, in one line."""
    if multihost.is_multihost(loaded.lab):
        message = f"a multi-host lab: nsgen {command} works on a one-machine lab (nsgen up, verify and down run hosts' parts)"
        raise TopologyError([Problem(loaded.origin, "hosts", message)])
    return loaded


def _announce(text: str) -> None:
    typer.echo(text)
    sys.stdout.flush()


@app.command("presets")
def presets_command() -> None:
    """List the built-in labs, one line each."""
    for preset in presets.PRESETS.values():
        size = f"(--count, default {preset.default_count})" if preset.default_count else ""
        typer.echo(f"{preset.name:<8} {preset.summary} {size}".rstrip())


@app.command()
@reports_problems
def init(
    preset: Annotated[
        str, typer.Option("--preset", "-p", help="Built-in lab to start from.", autocompletion=_preset_names)
    ] = presets.DEFAULT_PRESET,
    count: Count = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a preset as an editable YAML topology."""
    text = (
        f"# nsgen topology, from the preset '{preset}'. Check it with `nsgen validate FILE`;\n"
        "# the format is described by `nsgen schema`.\n" + yaml_file.dump(presets.build(preset, count))
    )
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise TopologyError([Problem(str(output), "", "exists already (use --force to overwrite it)")])
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)


@app.command()
@reports_problems
def validate(file: Annotated[Path, typer.Argument(help="Topology YAML file.")]) -> None:
    """Check a topology: exit 0, or one line per problem and exit 2."""
    lab = sources.load(file).lab
    typer.echo(f"{file}: ok: lab '{lab.name}', {len(lab.namespaces)} namespaces, {len(lab.links)} links")


@app.command()
@reports_problems
def render(
    file: File = None,
    preset: Preset = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Directory to write (default: generated/LAB).")
    ] = None,
    prefix: Prefix = None,
    count: Count = None,
    style: StyleOption = Style.batched,
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if the directory differs.")] = False,
) -> None:
    """Render the lab's scripts (default: the `pair` preset into generated/pair/)."""
    loaded = _load(file, preset, prefix, count)
    out_dir = output or Path("generated") / loaded.lab.name
    multi = multihost.is_multihost(loaded.lab)  # one directory per host, and the Ansible playbook
    files = multihost.render(loaded, style) if multi else lab_files.render(loaded, style)
    executables = multihost.executables(loaded.lab) if multi else lab_files.SCRIPTS
    if check:
        stale = writing.differences(files, out_dir, executables)
        if stale:
            typer.echo(f"{out_dir}: differs from what nsgen renders: {', '.join(stale)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out_dir}: up to date")
        return
    writing.write(files, out_dir, executables)
    typer.echo(f"rendered lab '{loaded.lab.name}' into {out_dir}/: {', '.join(files)}")


DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the commands the script would run; change nothing.")]


def _run(
    script: str, loaded: sources.LoadedLab, style: Style, workdir: Path | None, dry_run: bool, *options: str
) -> None:
    """Render the lab into a work dir and run its `script` with `options`, passing on its exit status (a
    multi-host lab: its playbook, through ansible-playbook)."""
    if multihost.is_multihost(loaded.lab):
        raise typer.Exit(multihost.run(loaded, script, style, workdir, dry_run))
    args = [*(["--dry-run"] if dry_run else []), *options]
    with scripts.rendered(loaded, style, workdir) as lab_dir:
        status = scripts.run_script(lab_dir, script, args, progress=sys.stderr.isatty())
    raise typer.Exit(status)


@app.command()
@reports_problems
def up(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    style: StyleOption = Style.batched,
    workdir: WorkDir = None,
    dry_run: DryRun = False,
    allow_forward: Annotated[
        bool,
        typer.Option(
            "--allow-forward",
            help="Where the FORWARD chain drops bridged traffic (Docker's DROP policy), accept the lab's bridges' "
            "own traffic (iptables rules that `nsgen down` deletes).",
        ),
    ] = False,
) -> None:
    """Render the lab and run its setup.sh."""
    options = ["--allow-forward"] if allow_forward else []
    _run("setup.sh", _load(file, preset, prefix, count), style, workdir, dry_run, *options)


@app.command()
@reports_problems
def down(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    workdir: WorkDir = None,
    dry_run: DryRun = False,
) -> None:
    """Render the lab and run its teardown.sh (of the lab its record says is running, after an apply)."""
    loaded = _load(file, preset, prefix, count)
    running_lab = records.recorded(loaded.lab)
    if running_lab is not None and running_lab.lab != loaded.lab:
        typer.echo(f"nsgen down: tearing down the lab as {running_lab.origin} has it (changed by nsgen apply)", err=True)
        loaded = running_lab
    _run("teardown.sh", loaded, Style.batched, workdir, dry_run)


@app.command()
@reports_problems
def verify(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    workdir: WorkDir = None,
    dry_run: DryRun = False,
) -> None:
    """Render the lab and run its verify.sh."""
    _run("verify.sh", _load(file, preset, prefix, count), Style.batched, workdir, dry_run)


@app.command()
@reports_problems
def demo(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    style: StyleOption = Style.tutorial,
    workdir: WorkDir = None,
) -> None:
    """Render the lab, set it up, show its links and addresses, verify it, tear it down."""
    loaded = _one_machine(_load(file, preset, prefix, count), "demo")
    lab = loaded.lab
    _announce(f"== nsgen demo: lab '{lab.name}' from {loaded.origin}: {lab.description}")
    with scripts.rendered(loaded, style, workdir) as lab_dir:
        _announce(f"\n== [1/5] render: the lab's scripts written to {lab_dir} ({style.value} style)")
        status = 0
        try:
            _announce("\n== [2/5] set up: ./setup.sh")
            status = scripts.run_script(lab_dir, "setup.sh")
            if status == 0:
                _announce("\n== [3/5] show links and addresses: source helpers.sh; displayLinks; displayAddr")
                status = scripts.run_helper(lab_dir, "displayLinks") or scripts.run_helper(lab_dir, "displayAddr")
            if status == 0:
                _announce("\n== [4/5] verify: ./verify.sh")
                status = scripts.run_script(lab_dir, "verify.sh")
        finally:  # the lab comes down even when our output is gone (a closed pipe) or the user interrupts
            try:
                _announce("\n== [5/5] tear down: ./teardown.sh")
            finally:
                down_status = scripts.run_script(lab_dir, "teardown.sh")
    status = status or down_status
    _announce(f"\n== demo {'passed' if status == 0 else 'FAILED'}")
    raise typer.Exit(status)


@app.command()
@reports_problems
def record(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Cast to write (default: LAB.cast).")] = None,
    cols: Annotated[int, typer.Option(min=20, help="Terminal width.")] = recording.CastOptions.cols,
    rows: Annotated[int, typer.Option(min=5, help="Terminal height.")] = recording.CastOptions.rows,
    title: Annotated[Optional[str], typer.Option(help="The cast's title.")] = None,
    typing_speed: Annotated[
        float, typer.Option(min=0, help="Seconds per typed character (0: each command at once).")
    ] = recording.CastOptions.typing_speed,
    idle_time_limit: Annotated[
        Optional[float], typer.Option(min=0, help="Players shorten pauses longer than this many seconds.")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Keep the real timings (demo.sh types for real).")] = False,
    gif: Annotated[Optional[Path], typer.Option(help="Also render the cast as an animated GIF (needs agg).")] = None,
) -> None:
    """Record the lab's demo.sh, run for real, as a reproducible asciinema cast (and a GIF)."""
    loaded = _one_machine(_load(file, preset, prefix, count), "record")
    renderer = recording.agg()
    if gif is not None and renderer is None:
        raise TopologyError([Problem("--gif", "", recording.AGG_MISSING)])
    cast = output or Path(f"{loaded.lab.name}.cast")
    options = recording.CastOptions(cols, rows, title, typing_speed, idle_time_limit, raw)
    with scripts.rendered(loaded) as lab_dir:
        status = recording.record(lab_dir, cast, options)
    if status != 0:
        typer.echo(f"nsgen record: demo.sh failed with exit status {status}", err=True)
        raise typer.Exit(status)
    if gif is not None and renderer is not None:
        status = recording.make_gif(cast, gif, renderer, idle_time_limit)
    typer.echo(f"recorded lab '{loaded.lab.name}' into {cast}{f' and {gif}' if gif else ''}")
    raise typer.Exit(status)


@app.command()
def play(cast: Annotated[Path, typer.Argument(help="An asciinema cast.", exists=True, dir_okay=False)]) -> None:
    """Replay a cast in this terminal (asciinema play)."""
    raise typer.Exit(recording.play(cast))


@app.command()
@reports_problems
def docs(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the page into.")],
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    cast: Annotated[Optional[Path], typer.Option(help="Show this cast instead of recording the demo now.")] = None,
) -> None:
    """Write the lab's static HTML page (offline): its demo in a player, its topology, its scripts."""
    loaded = _one_machine(_load(file, preset, prefix, count), "docs")
    with scripts.rendered(loaded) as lab_dir:
        if cast is None:
            cast = lab_dir / f"{loaded.lab.name}.cast"
            status = recording.record(lab_dir, cast)
            if status != 0:
                typer.echo(f"nsgen docs: demo.sh failed with exit status {status}", err=True)
                raise typer.Exit(status)
        written = docs_page.write(loaded, cast, output)
    typer.echo(f"wrote the page of lab '{loaded.lab.name}' into {output}/: {', '.join(written)}")


@app.command()
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
    typer.echo(diagram.graph(_load(file, preset, None, count), fmt), nl=False)


@app.command()
@reports_problems
def status(file: File = None, preset: Preset = None, prefix: Prefix = None, count: Count = None) -> None:
    """Compare every object the lab declares with the kernel: one line per difference (missing,
    extra, different); exit 0 only when there is none."""
    lab = _one_machine(_load(file, preset, prefix, count), "status").lab
    lines = drift.differences(lab)
    for line in lines:
        typer.echo(line)
    typer.echo(f"lab {lab.name}: {len(lines)} difference(s)" if lines else f"lab {lab.name}: no drift: the lab is fully up")
    raise typer.Exit(1 if lines else 0)


From = Annotated[
    Optional[Path],
    typer.Option("--from", help="The running lab's topology (default: its record under /run/nsgen).", show_default=False),
]


def _change(
    command: str, file: Path | None, preset: str | None, prefix: str | None, count: int | None, old_file: Path | None
) -> tuple[Lab, sources.LoadedLab]:
    """The running lab (from --from, else its record) and the new one, for `command` (plan or apply)."""
    new = _one_machine(_load(file, preset, prefix, count), command)
    old = records.load_old(new.lab, old_file)
    return old, new


def _print_plan(old_lab: Lab, new: sources.LoadedLab) -> change_plan.Diff:
    forward = change_plan.diff(old_lab, new.lab)
    for change in forward.changes:
        typer.echo(str(change))
    commands = sum(len(step.commands) for step in forward.plan)
    typer.echo(f"plan: {len(forward.changes)} change(s), {commands} command(s)" if forward.plan else "plan: no change")
    return forward


@app.command("plan")
@reports_problems
def plan_command(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    old_file: From = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write apply.sh and the new lab's scripts here.")
    ] = None,
    style: StyleOption = Style.batched,
) -> None:
    """Print the change from the running lab to this topology; with -o, write its apply.sh."""
    old, new = _change("plan", file, preset, prefix, count, old_file)
    _print_plan(old, new)
    if output is not None:
        writing.write(lab_files.render_apply(old, new, style), output)
        typer.echo(f"wrote {output}/apply.sh (and the new lab's scripts): review it, then run it")


@app.command("apply")
@reports_problems
def apply_command(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    old_file: From = None,
    style: StyleOption = Style.batched,
    workdir: WorkDir = None,
    dry_run: DryRun = False,
    force: Annotated[bool, typer.Option(help="Apply even where the running lab is not what its record says.")] = False,
) -> None:
    """Print the change from the running lab to this topology, and run its apply.sh."""
    old, new = _change("apply", file, preset, prefix, count, old_file)
    forward = _print_plan(old, new)
    if not forward.plan:
        raise typer.Exit(0)
    sys.stdout.flush()
    args = [*(["--dry-run"] if dry_run else []), *(["--force"] if force else [])]
    files = lab_files.render_apply(old, new, style, lab_files=workdir is not None)
    with scripts.rendered_files(files, new.lab.name, workdir) as lab_dir:
        status = scripts.run_script(lab_dir, lab_files.APPLY, args)
    raise typer.Exit(status)


@app.command("cni")
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
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if the directory differs.")] = False,
) -> None:
    """Render a CNI network: the dummy and nsgen-bridge plugins, its conflist, install.sh, containerd/."""
    options = cni.CniOptions(name, bridge, subnet, gateway, range_, cni_version, portmap, subnet6, gateway6, range6)
    out_dir = output or Path("generated") / "cni"
    files = cni.render_cni(options)
    if check:
        stale = writing.differences(files, out_dir, cni.EXECUTABLES)
        if stale:
            typer.echo(f"{out_dir}: differs from what nsgen renders: {', '.join(stale)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out_dir}: up to date")
        return
    writing.write(files, out_dir, cni.EXECUTABLES)
    typer.echo(f"rendered CNI network '{options.name}' into {out_dir}/: {', '.join(files)}")


class RuntimeScript(str, Enum):
    """The scripts whose runtime section is the same in every lab."""

    setup = "setup.sh"
    teardown = "teardown.sh"
    verify = "verify.sh"
    demo = "demo.sh"
    apply = "apply.sh"


@app.command()
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
        if check:
            stale = writing.differences(files, output, executables=())
            if stale:
                typer.echo(f"{output}: differs from what nsgen renders: {', '.join(stale)}", err=True)
                raise typer.Exit(1)
            typer.echo(f"{output}: up to date")
            return
        writing.write(files, output, executables=())
        typer.echo(f"wrote the runtime sections into {output}/: {', '.join(files)}")
        return
    if script is not None:
        typer.echo(templates.runtime(script.value), nl=False)
        return
    for kind in RuntimeScript:
        marker = templates.runtime(kind.value).split("\n", 1)[0]
        typer.echo(f"{marker.split()[5]}  {kind.value}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the topology format."""
    typer.echo(json.dumps(SCHEMA, indent=2))


@app.command()
def version() -> None:
    """Print nsgen's version."""
    typer.echo(__version__)


LabFile = Annotated[Optional[Path], typer.Option("--file", help="Topology YAML file (default: --preset).")]
Node = Annotated[str, typer.Argument(help="A namespace of the lab, named as in its topology (e.g. ns-0).")]


@app.command("exec")
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
    argv = node_access.exec_argv(_one_machine(_load(file, preset, prefix, count), "exec").lab, node, command or [])
    os.execvp(argv[0], argv)


@app.command()
@reports_problems
def shell(node: Node, file: LabFile = None, preset: Preset = None, prefix: Prefix = None, count: Count = None) -> None:
    """Open an interactive bash in a lab namespace; its prompt names the namespace."""
    argv, env = node_access.shell_argv(_one_machine(_load(file, preset, prefix, count), "shell").lab, node)
    os.execvpe(argv[0], argv, {**os.environ, **env})


@app.command()
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
    argv = node_access.capture_argv(_one_machine(_load(file, preset, prefix, count), "capture").lab, target, write, packets)
    os.execvp(argv[0], argv)


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
        with _cyclic_gc_paused():
            status = app(standalone_mode=False)
    except UsageError as error:
        where = error.ctx.command_path if error.ctx is not None else "nsgen"
        typer.echo(f"{where}: {' '.join(error.format_message().split())} (see {where} --help)", err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
