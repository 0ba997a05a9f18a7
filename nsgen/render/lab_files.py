"""Rendering a lab into its files, one Jinja2 template per artifact: the plans computed once and
printed by each file in its style; apply.sh for a change from a running lab."""

import hashlib
from dataclasses import dataclass
from typing import Any

from nsgen import __version__
from nsgen.plan import change_plan, commands, declared, lab_plans, progress, reachability
from nsgen.plan.as_found import Found
from nsgen.plan.commands import Command, Ping, Plan, step
from nsgen.render import styles
from nsgen.render.parallel import in_two_processes
from nsgen.render.styles import Style
from nsgen.render.templates import SCRIPT_SECTIONS, environment, runtime, template
from nsgen.topology import yaml_file
from nsgen.topology.ends import VxlanPort, owned
from nsgen.topology.facts import Fact
from nsgen.topology.model import Lab
from nsgen.validate.sources import LoadedLab

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "demo.sh", "check.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
TOPOLOGY = "topology.yaml"


def _facts(lab: Lab) -> dict[str, Any]:
    """What templates need to know about the lab as a whole, decided here rather than in Jinja."""
    root_addresses = [a for br in lab.bridges for a in br.addresses] + [a for i in lab.root_interfaces for a in i.addresses]
    return {
        # the devices the lab's macvlans are made on: setup checks they are there
        "parents": sorted({end.device for link in lab.links for end in (link.a, link.b) if not owned(end)}),
        "root_networks": sorted({str(a.network) for a in root_addresses if a.network.prefixlen < a.max_prefixlen}),
        "fdb": any(isinstance(tunnel, VxlanPort) for tunnel in lab.tunnels),  # a multi-host part: `bridge fdb`
        # the qdisc each link condition needs, and what it conditions: `netem a:e0 -- b:e0 (from a: delay 20ms)`
        "conditions": [f"{c.qdisc} {what} (from {end.node}: {c.text})" for what, end, c in lab.conditioned],
        "qdiscs": sorted({c.qdisc for _, _, c in lab.conditioned}),
        # what of the lab reaches outside it (`NAT from 10.0.1.0/24`), and --allow-forward's FORWARD rules
        "outside": [f"NAT from {net}" for net in lab.nat]
        + [f"{f.proto} port {f.port} to {f.node}:{f.to_port}" for f in lab.forwards],
        "ports": [f"{f.proto}:{f.port}" for f in lab.forwards],  # the machine's ports it forwards
        "accepts": [styles.tutorial_words(command, {}) for command in commands.accepts(lab)],
        "accepted": declared.accepted(lab),  # the same rules' matches, which the declared state takes as the lab's
        "bridges6": _bridges6(lab),  # their IPv6 passes ip6tables' FORWARD (bridge netfilter)
    }


def _bridges6(lab: Lab) -> list[str]:
    """The lab's bridges with IPv6: an address of their own, or of an interface plugged into them."""
    carrying = {br.device for br in lab.bridges if any(a.version == 6 for a in br.addresses)}
    for link in lab.links:
        for port, other in ((link.a, link.b), (link.b, link.a)):
            interface = lab.interface_of(other) if port.bridge is not None else None
            if interface is not None and any(a.version == 6 for a in interface.addresses):
                carrying.add(port.bridge)
    return [br.device for br in lab.bridges if br.device in carrying]


def _outside(lab: Lab) -> bool:
    """NAT or a forwarded port: iptables rules, and the root namespace's forwarding (a sysctl put back)."""
    return bool(lab.nat or lab.forwards)


def _forwarded(lab: Lab) -> bool:
    """What FORWARD may drop: a bridge, NAT or a forwarded port (--allow-forward has rules for it)."""
    return bool(commands.accepts(lab))


def sections(lab: Lab, script: str) -> tuple[str, ...]:
    """The runtime sections `script` of `lab` carries (of those it may, templates.SCRIPT_SECTIONS),
    decided here once: what its steps call, and what its core's hooks need. setup.sh and demo.sh:
    macvlans' parents (checked first), services, the FORWARD chain (a bridge, NAT or a forwarded port; its rules with it), link
    conditions (tc), sysctls (a namespace's, or the root's forwarding); teardown.sh: what deletes
    or puts back what those left (the services' files, the rules, the root sysctls)."""
    namespace_sysctls = any(ns.sysctls for ns in lab.namespaces)
    needed = {
        "facts": True,
        "parents": any(not owned(end) for link in lab.links for end in (link.a, link.b)),  # macvlans
        "services": any(ns.services for ns in lab.namespaces),
        "forward": _forwarded(lab),
        "rules": _forwarded(lab),
        "tc": bool(lab.conditioned),
        "sysctl": _outside(lab) or (script != "teardown.sh" and namespace_sysctls),
        "ipv6": not lab_plans.ipv4_only(lab),  # up once duplicate address detection is done
        "stop": bool(lab.namespaces),
    }
    return tuple(name for name in SCRIPT_SECTIONS[script] if needed[name])


#: The section that runs a command of each tool apply.sh's steps may use (`ip` and `bridge`: none).
_TOOL_SECTIONS = {
    "service": ("services",),
    "iptables": ("rules",),
    "forward_rule": ("rules", "accepts"),
    "tc": ("tc",),
    "sysctl": ("sysctl",),
    "stop": ("stop",),
}


def _apply_sections(plans: tuple[Plan, ...], retired: tuple[str, ...], ipv6: bool) -> tuple[str, ...]:
    """apply.sh's sections: facts (it checks the old lab), those whose functions its steps and its
    rollback's call, those whose cleanup it runs for the old lab (`retired`), `ipv6` for a new lab
    with IPv6 (it is said to be changed once its addresses are usable), and `forward` where the
    change (the first plan) adds a FORWARD rule of --allow-forward's: its preflight stops a change
    whose traffic FORWARD would drop, unless the lab has such rules or is given --allow-forward."""
    tools = {c.tool for plan in plans for s in plan for c in s.commands if isinstance(c, Command)}
    if unknown := tools - {"ip", "bridge", *_TOOL_SECTIONS}:
        raise ValueError(f"apply.sh has no section for {sorted(unknown)}")
    used = {section for tool in tools & _TOOL_SECTIONS.keys() for section in _TOOL_SECTIONS[tool]}
    accepting = any(c.tool == "forward_rule" and c.makes for s in plans[0] for c in s.commands)
    chosen = {"facts", *used, *retired, *(("ipv6",) if ipv6 else ()), *(("forward",) if accepting else ())}
    return tuple(name for name in SCRIPT_SECTIONS[APPLY] if name in chosen)


def _retired(old: Lab, new: Lab) -> tuple[str, ...]:
    """What of the old lab's outside the new one has no use for, nor its teardown.sh a section to
    undo, apply.sh cleans up itself: `rules` (--allow-forward's FORWARD rules, where the new lab has
    no bridge, NAT or forwarded port), `sysctl` (the root's forwarding, where it has no NAT or port)."""
    rules = _forwarded(old) and not _forwarded(new)
    return (*(("rules",) if rules else ()), *(("sysctl",) if _outside(old) and not _outside(new) else ()))


#: The README lists at most this many namespaces and links, and draws no diagram of more.
README_ROWS = 100


@dataclass(frozen=True)
class _Plans:
    """The lab's plans, computed once for every file that prints them."""

    setup: Plan
    teardown: Plan
    verify: Plan
    checks: Plan  # the topology's own checks beyond pings
    facts: list[Fact]  # the declared state
    places: list[declared.Place]  # the same, by place


def _script_context(lab: Lab, script: str, plans: _Plans, style: Style) -> dict[str, Any]:
    """What one file prints of the plans: blocks of commands, or batches."""
    if script == "setup.sh" and style is Style.tutorial:
        return {"blocks": styles.tutorial(lab, plans.setup)}
    if script == "setup.sh":
        return {"batches": styles.batched(lab, plans.setup)}
    if script == "teardown.sh":
        return {"batches": styles.batched(lab, plans.teardown)}
    if script == "verify.sh":
        pings = [command for step in plans.verify for command in step.commands if isinstance(command, Ping)]
        return {
            "blocks": styles.tutorial(lab, (*plans.verify, *plans.checks)),
            "fact_places": plans.places,
            # how many pings of each IP version: each needs a neighbour entry at both ends
            "pings": {version: sum(p.address.version == version for p in pings) for version in (4, 6)},
            # the root namespace's devices of the lab with addresses: their neighbour entries are the lab's
            "neighboured": [dev.device for dev in (*lab.bridges, *lab.root_interfaces) if dev.addresses],
        }
    if script == "demo.sh":
        return {
            "blocks": styles.demo(lab, (*plans.setup, *plans.verify, *plans.checks, *plans.teardown)),
            "setup_steps": len(plans.setup),
            "displays": styles.displays(lab, ("displayLinks", "displayAddr")),
        }
    if script == "check.sh":
        names = styles.aliases(lab)
        stages = progress.stages(lab, plans.setup, plans.facts)
        return {
            "stages": [
                {
                    "number": stage.number,
                    "label": stage.label,
                    "commands": [styles.tutorial_words(command, names) for command in stage.step.commands],
                    "places": declared.places(list(stage.facts)),
                }
                for stage in stages
            ],
            "fact_places": plans.places,
        }
    if script == "helpers.sh":
        return {"displays": styles.displays(lab, ("displayLinks", "displayAddr", "displayRoutes"), ("_nsgen_as_root",))}
    if script == "README.md":
        aliases = [ns.alias for ns in lab.namespaces]
        return {
            "blocks": styles.tutorial(lab, plans.setup, styles.README_COMMANDS_PER_STEP),
            "readme_rows": README_ROWS,
            "aliases_summary": ", ".join(aliases) if len(aliases) <= 4 else f"{aliases[0]} … {aliases[-1]}",
        }
    return {}


def _recorded_as(record: str) -> str:
    """A record's top-level name and prefix lines: what the scripts compare a record with (record_clash)."""
    return "\n".join(line for line in record.splitlines() if line.startswith(("name: ", "prefix: ")))


def record_text(lab: Lab) -> str:
    """What setup.sh and apply.sh record under /run/nsgen: the lab's normalised topology."""
    return yaml_file.dump(yaml_file.document(lab))


def render(loaded: LoadedLab, style: Style | str = Style.batched, topology: str | None = None) -> dict[str, str]:
    """Every file of the lab, by name. The same lab and style always give the same bytes. `topology`:
    the topology.yaml to write and hash instead of the lab's own (a multi-host lab's, in each host's part)."""
    topology = topology or record_text(loaded.lab)
    checks = reachability.checks(loaded.lab)
    lab = loaded.lab
    facts = declared.declared(lab)
    plans = _Plans(
        lab_plans.setup(lab),
        lab_plans.teardown(lab),
        lab_plans.verify(lab, checks),
        lab_plans.checks(lab),
        facts,
        declared.places(facts),
    )
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "record_text": topology,  # what setup.sh records under /run/nsgen
        "recorded_as": _recorded_as(topology),
        "checks": checks,
        "style": Style(style).value,
        "aliases": [(ns.alias, commands.alias_words(ns.netns)) for ns in loaded.lab.namespaces],
        **_facts(loaded.lab),
    }
    env = environment()

    def artifact(name: str) -> str:
        extra = _script_context(loaded.lab, name, plans, Style(style))
        if name in SCRIPTS:
            extra["runtime_sections"] = sections(loaded.lab, name)
            extra["runtime"] = runtime(name, extra["runtime_sections"])
        return env.get_template(f"{name}.j2").render(context, script=name, **extra)

    if len(loaded.lab.namespaces) > PARALLEL_NAMESPACES:
        files = in_two_processes(artifact, ARTIFACTS, FORKED_ARTIFACTS)
    else:
        files = {name: artifact(name) for name in ARTIFACTS}
    files[TOPOLOGY] = topology
    return files


#: A lab of more namespaces than this renders its files in two processes: FORKED_ARTIFACTS (about
#: half the work) in a forked child, the others here, at the same time.
PARALLEL_NAMESPACES = 500
FORKED_ARTIFACTS = ("check.sh", "helpers.sh", "teardown.sh", "README.md")


APPLY = "apply.sh"


def render_apply(
    old: Lab,
    loaded: LoadedLab,
    style: Style | str = Style.batched,
    lab_files: bool = True,
    found: Found | None = None,
    records: tuple[str, str] | None = None,
) -> dict[str, str]:
    """The new lab's files (without `lab_files`: its topology.yaml only) and its apply.sh: the
    change from the running `old` (its record; `found`: as the kernel has it, drift and all) to it
    (nsgen.plan.change_plan), with the repairs the model cannot hold around it. `records`: the old
    and new records to check and write instead of the labs' own (a multi-host lab's, on each host)."""
    found = found or Found(old)
    forward = change_plan.diff(found.lab, loaded.lab)
    plan = (
        *step("set up again the devices found down (their addresses and routes need them up)", found.before),
        *forward.plan,
        *step("plug the ports found out of their bridges back in", found.after),
    )
    old_text, new_text = records or (record_text(old), record_text(loaded.lab))
    files = render(loaded, style, topology=new_text) if lab_files else {TOPOLOGY: new_text}
    devices = change_plan.touched_devices(plan)
    old_facts = declared.declared(found.lab, forward.touched, devices)
    repaired = {(d.netns, d.line) for d in found.repaired}
    old_facts = [fact for fact in old_facts if (fact.netns, fact.line) not in repaired]
    # what the change touches, as the new topology declares it: checked once the change is made
    old_netns = {ns.netns for ns in found.lab.namespaces}
    reached = {ns.netns for ns in loaded.lab.namespaces if ns.netns in forward.touched or ns.netns not in old_netns}
    new_facts = declared.declared(loaded.lab, reached, devices)
    undo = change_plan.undo(forward).plan
    retired = _retired(old, loaded.lab)
    carried = _apply_sections((plan, undo), retired, not lab_plans.ipv4_only(loaded.lab))
    files[APPLY] = template(f"{APPLY}.j2").render(
        lab=loaded.lab,
        origin=loaded.origin,
        version=__version__,
        digest=hashlib.sha256(files[TOPOLOGY].encode()).hexdigest(),
        script=APPLY,
        runtime=runtime(APPLY, carried),
        runtime_sections=carried,
        retired=retired,
        changes=forward.changes,
        blocks=styles.apply(plan),
        undo_blocks=styles.undo(undo),
        old_fact_places=declared.places(old_facts),
        new_fact_places=declared.places(new_facts),
        old_record_text=old_text,
        old_digest=hashlib.sha256(old_text.encode()).hexdigest(),
        record_text=files[TOPOLOGY],
        recorded_as=_recorded_as(files[TOPOLOGY]),
        **{**_facts(loaded.lab), "fdb": any(c.tool == "bridge" for s in (*plan, *undo) for c in s.commands)},
    )
    return files
