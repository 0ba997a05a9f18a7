"""Commands that change a running lab: plan (print the change, write apply.sh) and apply (run it). A
multi-host lab's change is computed host by host, from each host's part as its kernel has it, and
applied by the playbook: each host's apply.sh, and revert.sh on the others where one fails."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nsgen.cli.options import (
    Count,
    DryRun,
    File,
    Prefix,
    Preset,
    StyleOption,
    WorkDir,
    load,
    reports_problems,
    write_or_check,
)
from nsgen.plan import change_plan
from nsgen.plan.as_found import Found, as_found
from nsgen.problems import Problem, TopologyError
from nsgen.render import lab_files, multihost
from nsgen.render.styles import Style
from nsgen.run import drift, host_states, playbook, records, scripts
from nsgen.topology.model import Lab
from nsgen.validate import sources

From = Annotated[
    Optional[Path],
    typer.Option("--from", help="The running lab's topology (default: its record under /run/nsgen).", show_default=False),
]


def _change(new: sources.LoadedLab, old_file: Path | None) -> tuple[Lab, sources.LoadedLab, dict[str, Found]]:
    """The running lab (from --from, else its record), the new one, and the running lab as the kernel
    has it (its drift read when it comes from its record), by host ("": this machine's lab)."""
    if multihost.is_multihost(new.lab) and old_file is None and records.recorded(new.lab) is None:
        return _from_hosts(new)
    old = records.load_old(new.lab, old_file)
    if not multihost.is_multihost(old):
        return old, new, {"": as_found(old, drift.differences(old)) if old_file is None else Found(old)}
    if old_file is not None:
        return old, new, {m.name: Found(multihost.host_lab(old, m.name)) for m in old.machines}
    try:
        return old, new, host_states.found(old)
    except (playbook.NoAnsible, RuntimeError) as error:
        typer.echo(f"nsgen: {error}", err=True)
        raise typer.Exit(2) from None


def _from_hosts(new: sources.LoadedLab) -> tuple[Lab, sources.LoadedLab, dict[str, Found]]:
    """A multi-host lab the controller has no record of (another workstation's, or its /run cleared):
    the running lab as its hosts record it, read with their kernels' state (read again when the hosts
    run another topology than `new`: the drift is the running lab's)."""
    try:
        states = host_states.read(new)
        running = host_states.records_agreed(new.lab, states)
        if running is None:
            said = f"lab {new.lab.key} is not recorded on any of its hosts: is it up? (nsgen up sets it up)"
            raise TopologyError([Problem(new.origin, "", said)])
        return running.lab, new, host_states.found(running.lab, states if running.lab == new.lab else None)
    except (playbook.NoAnsible, RuntimeError) as error:
        typer.echo(f"nsgen: {error}", err=True)
        raise typer.Exit(2) from None


def _print_plan(found: dict[str, Found], new: sources.LoadedLab, old: Lab) -> int:
    """Each host's change from the running lab `old` as found there (a multi-host lab's lines named with
    their host), and the count of commands it takes."""
    changes = commands = 0
    for host, there in found.items():
        part = multihost.host_lab(new.lab, host) if host else new.lab
        forward = change_plan.diff(there.lab, part)
        lines = [str(change) for change in forward.changes]
        for repaired in there.repaired:
            said = "- " if repaired.kind == "extra" else "~ "
            lines.append(said + f"{repaired.node}: {repaired.line}" + (f" (found {repaired.have})" if repaired.have else ""))
        for line in lines:
            typer.echo(f"{host}: {line}" if host else line)
        changes += len(lines)
        commands += sum(len(step.commands) for step in forward.plan) + len(there.repaired)
    if commands:
        typer.echo(f"plan: {changes} change(s), {commands} command(s)")
    elif old != new.lab:  # what the kernel does not hold changes (a check, the description): the record
        typer.echo("plan: no change in the kernel; the lab's record takes the new topology (its checks, its description)")
    else:
        typer.echo("plan: no change")
    return commands


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
    """Print the change from the running lab to this topology (without a file: its own, what repairs its
    drift); with -o, write its apply.sh."""
    old, new, found = _change(load(file, preset, prefix, count, running=True), old_file)
    _print_plan(found, new, old)
    if output is not None and multihost.is_multihost(old):
        files = multihost.render_apply(old, new, found, style)
        wrote = f"wrote {output}: each host's apply.sh (and revert.sh) beside the playbook: review them, then nsgen apply"
        write_or_check(files, output, multihost.executables(new.lab), False, wrote)
    elif output is not None:
        files = lab_files.render_apply(old, new, style, found=found[""])
        wrote = f"wrote {output}/apply.sh (and the new lab's scripts): review it, then run it"
        write_or_check(files, output, (*lab_files.SCRIPTS, lab_files.APPLY), False, wrote)


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
    force: Annotated[
        bool, typer.Option(help="Apply even where the running lab is not what its record says, or a preflight stops it.")
    ] = False,
    allow_forward: Annotated[
        bool,
        typer.Option(
            "--allow-forward",
            help="Where FORWARD drops the traffic of a bridge, NAT or port the change adds, accept it (as up --allow-forward).",
        ),
    ] = False,
) -> None:
    """Print the change from the running lab to this topology (without a file: its own, what repairs its
    drift), and run its apply.sh."""
    new = load(file, preset, prefix, count, running=True)  # without a file: the lab that runs, its drift repaired
    if allow_forward and multihost.is_multihost(new.lab):  # said before any host is reached
        said = "--allow-forward works on a one-machine lab: a multi-host lab's hosts keep the FORWARD rules they were set up with"
        raise TopologyError([Problem(new.origin, "", said)])
    old, new, found = _change(new, old_file)
    if force and multihost.is_multihost(old):
        said = "--force works on a one-machine lab: a multi-host lab's change starts from each host's kernel as it is"
        raise TopologyError([Problem(new.origin, "", said)])
    if not _print_plan(found, new, old) and old == new.lab:
        raise typer.Exit(0)
    sys.stdout.flush()
    if multihost.is_multihost(old):  # every host's apply.sh through the playbook; one failing reverts them all
        files = multihost.render_apply(old, new, found, style)
        raise typer.Exit(playbook.run(new, lab_files.APPLY, style, workdir, dry_run, files))
    args = [*(["--dry-run"] if dry_run else []), *(["--force"] if force else []), *(["--allow-forward"] if allow_forward else [])]
    files = lab_files.render_apply(old, new, style, lab_files=workdir is not None, found=found[""])
    with scripts.rendered_files(files, new.lab.name, workdir) as lab_dir:
        status = scripts.run_script(lab_dir, lab_files.APPLY, args)
    raise typer.Exit(status)
