"""`nsgen check` and `nsgen lesson`: where a learner stands in a lab's setup, step by step."""

import shlex
from collections.abc import Sequence
from typing import Annotated

import typer

from nsgen.cli.options import Count, File, NoLabRunning, Prefix, Preset, load, one_machine, reports_problems
from nsgen.plan import lab_plans, progress
from nsgen.plan.commands import Command, Connect, Ping, Probe
from nsgen.render import multihost, styles
from nsgen.render.styles import Style
from nsgen.run import playbook, standing
from nsgen.topology.model import Lab


def _commands(lab: Lab, commands: Sequence[Command | Ping | Connect | Probe]) -> list[str]:
    """Commands as the guide writes them (the tutorial style, with the aliases)."""
    names = styles.aliases(lab)
    return [shlex.join(styles.tutorial_words(command, names)) for command in commands]


def _lacking(lab: Lab, found: standing.Standing) -> None:
    """What the current step lacks, and what gives it: the repair of each value that differs, or
    the step's own commands."""
    assert found.current is not None
    for difference in found.lacking:
        typer.echo(f"  {difference}")
    fixes = progress.repairs(found.lacking)
    typer.echo("  what repairs it:" if fixes else "  its commands, as the guide writes them:")
    for line in fixes or _commands(lab, found.current.step.commands):
        typer.echo(f"    {line}")


def _extra(found: standing.Standing) -> None:
    for difference in found.extra:
        typer.echo(f"! not the lab's: {difference}")


def _report(lab: Lab, stages: list[progress.Stage]) -> bool:
    """Print where the kernel stands; whether the whole lab is there, and nothing beyond it."""
    found = standing.standing(lab, stages)
    for stage in found.done:
        typer.echo(f"✓ step {stage.number} \"{stage.label}\"")
    if found.current is not None:
        typer.echo(f"✗ step {found.current.number} \"{found.current.label}\": not done")
        _lacking(lab, found)
    for stage in found.later:
        typer.echo(f"· step {stage.number} \"{stage.label}\"")
    _extra(found)
    done = len(found.done)
    whole = "every step is done" if found.current is None else f"{done} of {len(stages)} step(s) done"
    typer.echo(f"lab {lab.name}: {whole}" + (f", and {len(found.extra)} thing(s) beyond it" if found.extra else ""))
    return found.complete


@reports_problems
def check(file: File = None, preset: Preset = None, prefix: Prefix = None, count: Count = None) -> None:
    """Where you stand in the lab's setup: the steps done (✓), the first not done with what it lacks and
    its commands, what is there beyond the lab (!); exit 0 only when the whole lab is there. A multi-host
    lab: each host's check.sh, through Ansible. Without a file: the lab that runs, else (none recorded)
    pair, as you build it by hand."""
    try:
        loaded = load(file, preset, prefix, count, running=True)
    except NoLabRunning:
        loaded = load(file, preset, prefix, count)
    if multihost.is_multihost(loaded.lab):  # each host's check.sh, through the playbook
        raise typer.Exit(playbook.run(loaded, "check.sh", Style.batched, None, False))
    lab = loaded.lab
    raise typer.Exit(0 if _report(lab, progress.stages(lab, lab_plans.setup(lab))) else 1)


@reports_problems
def lesson(
    file: File = None,
    preset: Preset = None,
    prefix: Prefix = None,
    count: Count = None,
    start: Annotated[int, typer.Option(min=1, help="The step to start from.")] = 1,
) -> None:
    """The lab's setup one step at a time, for you to type in another terminal: each step's commands,
    then Enter runs `check`; a step not done yet is shown again (Ctrl-D stops)."""
    lab = one_machine(load(file, preset, prefix, count), "lesson").lab
    stages = progress.stages(lab, lab_plans.setup(lab))
    typer.echo(f"lab {lab.name}: {len(stages)} steps; type each step's commands as root, then press Enter")
    index, beyond = start - 1, 0
    while index < len(stages):
        stage = stages[index]
        typer.echo(f"\n# --- step {stage.number} of {len(stages)}: {stage.step.comment.replace(chr(10), chr(10) + '# ')}")
        for line in _commands(lab, stage.step.commands):
            typer.echo(line)
        try:
            input("(Enter checks your work) ")
        except EOFError:
            typer.echo("\nlesson stopped")
            raise typer.Exit(1) from None
        found = standing.standing(lab, stages)  # what check says, said the same way
        reached = len(found.done)
        if reached > index:
            typer.echo(f"✓ step {stage.number} done")
            index = reached
        else:
            _lacking(lab, found)
        _extra(found)
        beyond = len(found.extra)
    typer.echo(f"lab {lab.name}: every step is done" + (f", and {beyond} thing(s) beyond it" if beyond else ""))
