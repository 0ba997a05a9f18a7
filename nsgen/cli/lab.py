"""Commands that run a lab's scripts: up, down, verify, demo, and status against the kernel."""

import shlex
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from nsgen.cli.options import (
    Count,
    DryRun,
    File,
    NoLabRunning,
    Prefix,
    Preset,
    PresetName,
    StyleOption,
    WorkDir,
    load,
    one_machine,
    reports_problems,
)
from nsgen.problems import Problem, TopologyError
from nsgen.render import multihost
from nsgen.render.styles import Style
from nsgen.run import drift, host_states, playbook, records, scripts
from nsgen.topology.model import Lab
from nsgen.validate import sources


def _announce(text: str) -> None:
    typer.echo(text)
    sys.stdout.flush()


def _run(
    script: str,
    loaded: sources.LoadedLab,
    style: Style,
    workdir: Path | None,
    dry_run: bool,
    *options: str,
    env: dict[str, str] | None = None,
) -> None:
    """Render the lab into a work dir and run its `script` with `options`, passing on its exit status (a
    multi-host lab: its playbook, through ansible-playbook)."""
    if multihost.is_multihost(loaded.lab):
        raise typer.Exit(playbook.run(loaded, script, style, workdir, dry_run, setup_options=options))
    args = [*(["--dry-run"] if dry_run else []), *options]
    with scripts.rendered(loaded, style, workdir) as lab_dir:
        status = scripts.run_script(lab_dir, script, args, progress=sys.stderr.isatty(), env=env)
    raise typer.Exit(status)


def _next(file: Path | None, preset: PresetName | None, prefix: str | None, count: int | None, workdir: Path | None) -> str:
    """What to run after `nsgen up`: the kept scripts, or the nsgen commands of the same lab."""
    if workdir is not None:
        where = shlex.quote(str(workdir.absolute()))
        return f"{where}/verify.sh; source {where}/helpers.sh && displayAddr; {where}/teardown.sh"
    words = _source_words(file, preset, prefix, count)
    return "; ".join(shlex.join(["nsgen", verb, *words]) for verb in ("verify", "status", "down"))


def _source_words(file: Path | None, preset: PresetName | None, prefix: str | None, count: int | None) -> list[str]:
    """The lab-source options as the user gave them."""
    words = [str(file)] if file is not None else ["--preset", preset.value] if preset is not None else []
    return [*words, *(["-n", str(count)] if count is not None else []), *(["--prefix", prefix] if prefix else [])]


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
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Set the lab up even where its subnets overlap root routes, FORWARD drops bridged traffic, or the "
            "kernel lacks a qdisc its link conditions need (setup.sh --force: it says what it left out).",
        ),
    ] = False,
) -> None:
    """Render the lab and run its setup.sh."""
    options = [*(["--allow-forward"] if allow_forward else []), *(["--force"] if force else [])]
    loaded = load(file, preset, prefix, count)
    _refuse_drift(loaded, _source_words(file, preset, prefix, count))
    hint = {"NSGEN_NEXT": _next(file, preset, prefix, count, workdir)}
    _run("setup.sh", loaded, style, workdir, dry_run, *options, env=hint)


def _present(lab: Lab) -> list[str]:
    """What of `lab` is on this machine already: its namespaces and root-namespace devices, named."""
    namespaces = set(drift.namespaces())
    found = [f"namespace {ns.netns}" for ns in lab.namespaces if ns.netns in namespaces]
    return found + [f"device {device}" for device in lab.root_devices if Path("/sys/class/net", device).exists()]


def _refuse_drift(loaded: sources.LoadedLab, source: list[str]) -> None:
    """`nsgen up` of a lab whose name (with its prefix) is up from another topology: refused, nothing
    made (a record whose namespaces are all gone is no lab up: setup.sh records the new one; a multi-host
    lab's, the controller's record alone); of a lab that runs as recorded but has drifted (on any of its
    hosts): the drift, and what repairs it."""
    running = records.recorded(loaded.lab)
    if running is None:
        return
    theirs = {ns.netns for ns in running.lab.namespaces}
    here = multihost.is_multihost(loaded.lab) or theirs & set(drift.namespaces())  # on hosts: the controller's record
    if running.lab != loaded.lab and here:  # a record with nothing left is no lab up
        change = shlex.join(["nsgen", "apply", *source])
        message = f"lab {loaded.lab.key} is already up from another topology ({running.origin}): nothing was made"
        raise TopologyError([Problem(loaded.origin, "", f"{message}; {change} changes it, nsgen down takes it down")])
    if multihost.is_multihost(loaded.lab):  # each host's part, as its status.sh reads it
        try:
            states = host_states.read(loaded)
        except (playbook.NoAnsible, RuntimeError) as error:
            typer.echo(f"nsgen up: {error}", err=True)
            raise typer.Exit(2) from None
        found = [d for state in states for d in state.differences]
        lines, _ = host_states.report(loaded.lab, states)
    else:
        found = drift.differences(loaded.lab)
        lines = [str(difference) for difference in found]
    if sum(d.fact.kind == "namespace" and d.kind == "missing" for d in found) == len(loaded.lab.namespaces):
        return  # nothing of it is left: setup.sh sets it up again
    if found:
        for line in lines:
            typer.echo(line)
        repair = shlex.join(["nsgen", "apply", *source])
        typer.echo(f"nsgen up: lab {loaded.lab.name} is up and has drifted: {repair} repairs it", err=True)
        raise typer.Exit(1)


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
    try:
        loaded = load(file, preset, prefix, count, running=True)
    except NoLabRunning as nothing:
        typer.echo(f"{nothing.what}: nothing to tear down")
        raise typer.Exit(0) from None
    running_lab = records.recorded(loaded.lab)
    if running_lab is not None and running_lab.lab != loaded.lab:
        typer.echo(f"nsgen down: tearing down the lab as {running_lab.origin} has it (changed by nsgen apply)", err=True)
        loaded = running_lab
    if running_lab is None and (owner := records.owner(loaded.lab)) is not None:
        message = f"lab {loaded.lab.name} is not up, and its names are lab {owner.lab.name}'s ({owner.origin})"
        raise TopologyError([Problem(loaded.origin, "", message + ": nothing was deleted")])
    _run("teardown.sh", loaded, Style.batched, workdir, dry_run)


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
    _run("verify.sh", load(file, preset, prefix, count, running=True), Style.batched, workdir, dry_run)


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
    loaded = one_machine(load(file, preset, prefix, count), "demo")
    lab = loaded.lab
    taken = _present(lab)
    if taken:  # the demo tears down what it set up, and only that
        named = ", ".join(taken[:5]) + (f" and {len(taken) - 5} more" if len(taken) > 5 else "")
        said = f"lab {lab.key} is there already (or its names are taken: {named}): the demo sets up a lab of its own and"
        raise TopologyError([Problem(loaded.origin, "", f"{said} tears it down; nsgen down first, or give another --prefix")])
    _announce(f"== nsgen demo: lab '{lab.name}' from {loaded.origin}: {lab.description}")
    with scripts.rendered(loaded, style, workdir) as lab_dir:
        _announce(f"\n== [1/5] render: the lab's scripts written to {lab_dir} ({style.value} style)")
        status = 0
        set_up = False
        try:
            _announce("\n== [2/5] set up: ./setup.sh")
            status = scripts.run_script(lab_dir, "setup.sh")
            set_up = status == 0  # a failed setup.sh rolled back what it made
            if status == 0:
                _announce("\n== [3/5] show links and addresses: source helpers.sh; displayLinks; displayAddr")
                status = scripts.run_helper(lab_dir, "displayLinks") or scripts.run_helper(lab_dir, "displayAddr")
            if status == 0:
                _announce("\n== [4/5] verify: ./verify.sh")
                status = scripts.run_script(lab_dir, "verify.sh")
        finally:  # the lab comes down even when our output is gone (a closed pipe) or the user interrupts
            down_status = 0
            # set up, or stopped by a signal midway (nothing was there before: what is there, it made);
            # not a refusal (2: another run took a name meanwhile) nor a busy lock (3)
            if set_up or (status in (129, 130, 143) and _present(lab)):
                try:
                    _announce("\n== [5/5] tear down: ./teardown.sh")
                finally:
                    down_status = scripts.run_script(lab_dir, "teardown.sh")
    status = status or down_status
    _announce(f"\n== demo {'passed' if status == 0 else 'interrupted' if status == 130 else 'FAILED'}")
    raise typer.Exit(status)


@reports_problems
def status(file: File = None, preset: Preset = None, prefix: Prefix = None, count: Count = None) -> None:
    """Compare every object the lab declares with the kernel: one line per difference (missing,
    extra, different); exit 0 only when there is none. A multi-host lab: on every host, through Ansible."""
    loaded = load(file, preset, prefix, count, running=True)
    lab = loaded.lab
    running = records.recorded(lab)
    if running is not None and running.lab != lab:
        _another_topology(lab, running.origin)
    if multihost.is_multihost(lab):
        _hosts_status(loaded, recorded_here=running is not None)
    present = {ns.netns for ns in lab.namespaces} & set(drift.namespaces())
    if running is None and not present:
        typer.echo(f"lab {lab.name} is not up: nothing of it is here (nsgen up sets it up)")
        raise typer.Exit(1)
    found = drift.differences(lab)
    lines = [str(difference) for difference in found]
    for difference in found:
        typer.echo(str(difference))
        for line in drift.service_report(lab, difference):
            typer.echo(line)
    typer.echo(f"lab {lab.name}: {len(lines)} difference(s)" if lines else f"lab {lab.name}: no drift: the lab is fully up")
    raise typer.Exit(1 if lines else 0)


def _another_topology(lab: Lab, origin: str) -> NoReturn:
    """What `nsgen status` says of a lab whose record (`origin`) holds another topology: exit 1."""
    typer.echo(f"lab {lab.key} is up from another topology ({origin}), not this one: nsgen plan shows the change")
    raise typer.Exit(1)


def _hosts_status(loaded: sources.LoadedLab, recorded_here: bool) -> None:
    """`nsgen status` of a multi-host lab: each host's differences, named with it; a host not read, named.
    Without a record here, the hosts' records say whether it runs this topology."""
    try:
        states = host_states.read(loaded)
    except (playbook.NoAnsible, RuntimeError) as error:
        typer.echo(f"nsgen status: {error}", err=True)
        raise typer.Exit(2) from None
    running = None if recorded_here else host_states.records_agreed(loaded.lab, states)
    if running is not None and running.lab != loaded.lab:
        _another_topology(loaded.lab, running.origin)
    lines, code = host_states.report(loaded.lab, states)
    for line in lines:
        typer.echo(line)
    raise typer.Exit(code)
