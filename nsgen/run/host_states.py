"""A multi-host lab's state, host by host (`nsgen status`): each host's status.sh (the scripts' own
reader, the runtime section facts) run by the playbook's status play over SSH, its rows brought back
to the controller and typed as one-machine drift is, each difference named with its host."""

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nsgen.plan.as_found import Found, as_found
from nsgen.problems import Problem, TopologyError
from nsgen.render import multihost
from nsgen.run import drift
from nsgen.run.drift import rows
from nsgen.run.playbook import NoAnsible, ansible_playbook, playbook_argv
from nsgen.run.scripts import rendered_files
from nsgen.topology import yaml_file
from nsgen.topology.facts import Difference
from nsgen.topology.model import Lab
from nsgen.validate import sources
from nsgen.validate.sources import LoadedLab


@dataclass(frozen=True)
class HostState:
    """A host's part compared with its kernel: its differences, or why it could not be read."""

    host: str
    differences: tuple[Difference, ...] = ()
    unreachable: str = ""  # what Ansible said, when the host could not be reached
    failed: str = ""  # what status.sh said, when it failed there
    services: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (NETNS, NAME): `status:…`, `log:…`
    record: str | None = None  # the host's record of the lab (/run/nsgen/KEY.yaml), if it has one


def _host_state(host: str, result: dict) -> HostState:
    if result.get("unreachable"):
        return HostState(host, unreachable=" ".join(str(result.get("msg", "unreachable")).split()))
    if result.get("rc") != 0:
        said = (result.get("stderr") or result.get("msg") or "").strip().splitlines()
        return HostState(host, failed=f"exit status {result.get('rc')}: {said[-1] if said else 'no message'}")
    lines = result.get("stdout", "").splitlines()  # over SSH with a terminal, its stderr too
    if not lines or not lines[-1].startswith(f"{multihost.STATUS}: "):
        return HostState(host, failed=f"its output ended early: {lines[-1] if lines else 'none'}")
    services: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        if line.startswith("service\t") and line.count("\t") >= 3:
            _, netns, name, said = line.split("\t", 3)
            services.setdefault((netns, name), []).append(said)
    recorded = [line.removeprefix("record\t") for line in lines if line.startswith("record\t")]
    drifted = [line for line in lines if line.count("\t") == 4 and not line.startswith(("service\t", "record\t"))]  # 5 fields
    record = "".join(f"{line}\n" for line in recorded) or None
    return HostState(host, tuple(rows("\n".join(drifted))), services=services, record=record)


def _service_report(lab: Lab, state: HostState, difference: Difference) -> list[str]:
    """What the host's status.sh said of a service that is not running, as `drift.service_report` says it."""
    said = state.services.get((difference.netns or "", difference.fact.device), [])
    if not drift.reported(difference) or not said:
        return []
    status = next((word.removeprefix("status:") for word in said if word.startswith("status:")), "")
    log = drift.services_dir(lab) / (difference.netns or "") / f"{difference.fact.device}.log"
    lines = [word.removeprefix("log:") for word in said if word.startswith("log:")]
    return drift.service_said(status, f"{state.host}:{log}", lines)


def read(loaded: LoadedLab, workdir: Path | None = None) -> list[HostState]:
    """Every host's part of the multi-host lab compared with the kernel there: each host's status.sh
    (the scripts' own reader) run by the playbook's status play, its rows brought back to the controller."""
    playbook = ansible_playbook()
    if playbook is None:
        raise NoAnsible
    files = multihost.render(loaded)
    scratch = Path(tempfile.mkdtemp(prefix="nsgen-status-"))
    try:
        results = scratch / "results.json"
        with rendered_files(files, loaded.lab.name, workdir, multihost.executables(loaded.lab)) as lab_dir:
            argv = playbook_argv(playbook, multihost.STATUS, False, {"nsgen_results": str(results)})
            ran = subprocess.run(argv, cwd=lab_dir, capture_output=True, text=True, check=False)
        if not results.exists():
            raise RuntimeError(f"ansible-playbook failed (exit status {ran.returncode}):\n{ran.stdout}{ran.stderr}".rstrip())
        by_host = json.loads(results.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [_host_state(machine.name, by_host.get(machine.name, {})) for machine in loaded.lab.machines]


def report(lab: Lab, states: list[HostState]) -> tuple[list[str], int]:
    """What `nsgen status` says of the hosts' states, a line each (`h2: b: route …: missing`), and its
    exit status: 0 only when every host was read and is as declared."""
    lines: list[str] = []
    for state in states:
        if state.unreachable:
            lines.append(f"{state.host}: unreachable: {state.unreachable}")
        elif state.failed:
            lines.append(f"{state.host}: status.sh failed: {state.failed}")
        for difference in state.differences:
            lines.append(f"{state.host}: {difference}")
            lines += _service_report(lab, state, difference)
    unread = [s.host for s in states if s.unreachable or s.failed]
    drifted = [s.host for s in states if s.differences]
    gone = sum(d.fact.kind == "namespace" and d.kind == "missing" for s in states for d in s.differences)
    if not unread and gone == len(lab.namespaces):
        return [f"lab {lab.name} is not up: nothing of it is on any host (nsgen up sets it up)"], 1
    count = sum(len(s.differences) for s in states)
    if drifted:
        lines.append(f"lab {lab.name}: {count} difference(s), on {', '.join(drifted)}")
    if unread:
        lines.append(f"lab {lab.name}: not read on {', '.join(unread)}: its part there is unknown")
    if not lines:
        lines.append(f"lab {lab.name}: no drift: every host's part is fully up ({', '.join(s.host for s in states)})")
    return lines, int(bool(drifted or unread))


def records_agreed(lab: Lab, states: list[HostState]) -> LoadedLab | None:
    """The running lab as the hosts record it (where the controller has no record of its own): None
    when no host has one; refused in one line when some have none, or they differ."""
    texts = {s.host: s.record for s in states if not (s.unreachable or s.failed)}
    unread = [s for s in states if s.unreachable or s.failed]
    if unread:
        said = "its record is unknown"
        raise TopologyError([Problem(s.host, "", f"not read ({s.unreachable or s.failed}): {said}") for s in unread])
    if not any(texts.values()):
        return None
    if len(set(texts.values())) > 1:
        having = ", ".join(f"{host}: {'a record' if text else 'none'}" for host, text in texts.items())
        said = f"the hosts' records of lab {lab.key} disagree ({having})"
        raise TopologyError([Problem("the hosts", "", said + ": give the running topology with --from OLD")])
    text = next(iter(texts.values())) or ""
    origin = f"the hosts' records ({', '.join(texts)})"
    return sources.from_document(yaml_file.parse(text, origin), origin, origin)


def found(old: Lab, states: list[HostState] | None = None) -> dict[str, Found]:
    """Each host's part of the running lab `old` as the kernel there has it (`states`: read already,
    against `old`), by host: where a change starts from (its drift repaired). A host not read:
    refused, one line each."""
    states = states if states is not None else read(LoadedLab(old, "the record"))
    unread = [s for s in states if s.unreachable or s.failed]
    if unread:
        raise TopologyError([Problem(s.host, "", f"not read ({s.unreachable or s.failed}): nothing was changed") for s in unread])
    return {s.host: as_found(multihost.host_lab(old, s.host), list(s.differences)) for s in states}


