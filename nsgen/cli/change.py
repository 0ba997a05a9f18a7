"""Commands that change a running lab: plan (print the change, write apply.sh) and apply (run it)."""

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
    PresetName,
    StyleOption,
    WorkDir,
    load,
    one_machine,
    reports_problems,
    write_or_check,
)
from nsgen.plan import change_plan
from nsgen.plan.as_found import Found, as_found
from nsgen.render import lab_files
from nsgen.render.styles import Style
from nsgen.run import drift, records, scripts
from nsgen.topology.model import Lab
from nsgen.validate import sources

From = Annotated[
    Optional[Path],
    typer.Option("--from", help="The running lab's topology (default: its record under /run/nsgen).", show_default=False),
]


def _change(
    command: str, file: Path | None, preset: PresetName | None, prefix: str | None, count: int | None, old_file: Path | None
) -> tuple[Lab, sources.LoadedLab, Found]:
    """The running lab (from --from, else its record), the new one, for `command` (plan or apply),
    and the running lab as the kernel has it (its drift read when it comes from its record)."""
    new = one_machine(load(file, preset, prefix, count), command)
    old = records.load_old(new.lab, old_file)
    return old, new, as_found(old, drift.differences(old)) if old_file is None else Found(old)


def _print_plan(found: Found, new: sources.LoadedLab) -> change_plan.Diff:
    forward = change_plan.diff(found.lab, new.lab)
    for change in forward.changes:
        typer.echo(str(change))
    for repaired in found.repaired:
        said = "- " if repaired.kind == "extra" else "~ "
        typer.echo(said + f"{repaired.node}: {repaired.line}" + (f" (found {repaired.have})" if repaired.have else ""))
    commands = sum(len(step.commands) for step in forward.plan) + len(found.repaired)
    changes = len(forward.changes) + len(found.repaired)
    typer.echo(f"plan: {changes} change(s), {commands} command(s)" if commands else "plan: no change")
    return forward


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
    old, new, found = _change("plan", file, preset, prefix, count, old_file)
    _print_plan(found, new)
    if output is not None:
        files = lab_files.render_apply(old, new, style, found=found)
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
    force: Annotated[bool, typer.Option(help="Apply even where the running lab is not what its record says.")] = False,
) -> None:
    """Print the change from the running lab to this topology, and run its apply.sh."""
    old, new, found = _change("apply", file, preset, prefix, count, old_file)
    forward = _print_plan(found, new)
    if not forward.plan and not found.repaired:
        raise typer.Exit(0)
    sys.stdout.flush()
    args = [*(["--dry-run"] if dry_run else []), *(["--force"] if force else [])]
    files = lab_files.render_apply(old, new, style, lab_files=workdir is not None, found=found)
    with scripts.rendered_files(files, new.lab.name, workdir) as lab_dir:
        status = scripts.run_script(lab_dir, lab_files.APPLY, args)
    raise typer.Exit(status)
