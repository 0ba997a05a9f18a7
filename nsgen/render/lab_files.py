"""Rendering a lab into its files, one Jinja2 template per artifact: the plans computed once and
printed by each file in its style; apply.sh for a change from a running lab."""

import hashlib
from dataclasses import dataclass
from typing import Any

from nsgen import __version__
from nsgen.plan import change_plan, commands, declared, lab_plans, progress, reachability
from nsgen.plan.as_found import Found
from nsgen.plan.commands import Plan, step
from nsgen.render import styles
from nsgen.render.parallel import in_two_processes
from nsgen.render.styles import Style
from nsgen.render.templates import environment, runtime, template
from nsgen.topology import yaml_file
from nsgen.topology.model import Lab, VxlanPort
from nsgen.validate.sources import LoadedLab

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "demo.sh", "check.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
TOPOLOGY = "topology.yaml"


def _facts(lab: Lab) -> dict[str, Any]:
    """What templates need to know about the lab as a whole, decided here rather than in Jinja."""
    root_addresses = [a for br in lab.bridges for a in br.addresses] + [a for i in lab.root_interfaces for a in i.addresses]
    sent = [(link, end, c) for link in lab.links for end, c in zip((link.a, link.b), link.sends, strict=True) if c]
    return {
        "root_networks": sorted({str(a.network) for a in root_addresses if a.network.prefixlen < a.max_prefixlen}),
        "fdb": any(isinstance(tunnel, VxlanPort) for tunnel in lab.tunnels),  # a multi-host part: `bridge fdb`
        # the qdisc each link condition needs, and what it conditions: `netem a:e0 -- b:e0 (from a: delay 20ms)`
        "conditions": [f"{c.qdisc} {link.a} -- {link.b} (from {end.node}: {c.text})" for link, end, c in sent],
        "qdiscs": sorted({c.qdisc for _, _, c in sent}),
        # what of the lab reaches outside it (`NAT from 10.0.1.0/24`), and --allow-forward's FORWARD rules
        "outside": [f"NAT from {net}" for net in lab.nat]
        + [f"{f.proto} port {f.port} to {f.node}:{f.to_port}" for f in lab.forwards],
        "accepts": [styles.tutorial_words(command, {}) for command in commands.accepts(lab)],
    }


#: The README lists at most this many namespaces and links, and draws no diagram of more.
README_ROWS = 100


@dataclass(frozen=True)
class _Plans:
    """The lab's plans, computed once for every file that prints them."""

    setup: Plan
    teardown: Plan
    verify: Plan
    checks: Plan  # the topology's own checks beyond pings
    places: list[declared.Place]  # the declared state, by place


def _script_context(lab: Lab, script: str, plans: _Plans, style: Style) -> dict[str, Any]:
    """What one file prints of the plans: blocks of commands, or batches."""
    if script == "setup.sh" and style is Style.tutorial:
        return {"blocks": styles.tutorial(lab, plans.setup)}
    if script == "setup.sh":
        return {"batches": styles.batched(lab, plans.setup)}
    if script == "teardown.sh":
        return {"batches": styles.batched(lab, plans.teardown)}
    if script == "verify.sh":
        return {"blocks": styles.tutorial(lab, (*plans.verify, *plans.checks)), "expect_places": plans.places}
    if script == "demo.sh":
        return {
            "blocks": styles.demo(lab, (*plans.setup, *plans.verify, *plans.checks, *plans.teardown)),
            "setup_steps": len(plans.setup),
            "displays": styles.displays(lab, ("displayLinks", "displayAddr")),
        }
    if script == "check.sh":
        names = styles.aliases(lab)
        stages = progress.stages(lab, plans.setup)
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
            "expect_places": plans.places,
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


def record_text(lab: Lab) -> str:
    """What setup.sh and apply.sh record under /run/nsgen: the lab's normalised topology."""
    return yaml_file.dump(yaml_file.document(lab))


def render(loaded: LoadedLab, style: Style | str = Style.batched, topology: str | None = None) -> dict[str, str]:
    """Every file of the lab, by name. The same lab and style always give the same bytes. `topology`:
    the topology.yaml to write and hash instead of the lab's own (a multi-host lab's, in each host's part)."""
    topology = topology or record_text(loaded.lab)
    checks = reachability.checks(loaded.lab)
    lab = loaded.lab
    plans = _Plans(
        lab_plans.setup(lab),
        lab_plans.teardown(lab),
        lab_plans.verify(lab, checks),
        lab_plans.checks(lab),
        declared.places(declared.declared(lab)),
    )
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "record_text": topology,  # what setup.sh records under /run/nsgen
        "checks": checks,
        "style": Style(style).value,
        "aliases": [(ns.alias, commands.alias_words(ns.netns)) for ns in loaded.lab.namespaces],
        **_facts(loaded.lab),
    }
    env = environment()

    def artifact(name: str) -> str:
        extra = _script_context(loaded.lab, name, plans, Style(style))
        if name in SCRIPTS:
            extra["runtime"] = runtime(name)
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
FORKED_ARTIFACTS = ("demo.sh", "helpers.sh", "teardown.sh", "README.md")


APPLY = "apply.sh"


def render_apply(
    old: Lab, loaded: LoadedLab, style: Style | str = Style.batched, lab_files: bool = True, found: Found | None = None
) -> dict[str, str]:
    """The new lab's files (without `lab_files`: its topology.yaml only) and its apply.sh: the
    change from the running `old` (its record; `found`: as the kernel has it, drift and all) to it
    (nsgen.plan.change_plan), with the repairs the model cannot hold around it."""
    found = found or Found(old)
    forward = change_plan.diff(found.lab, loaded.lab)
    plan = (
        *step("set up again the devices found down (their addresses and routes need them up)", found.before),
        *forward.plan,
        *step("plug the ports found out of their bridges back in", found.after),
    )
    files = render(loaded, style) if lab_files else {TOPOLOGY: record_text(loaded.lab)}
    old_text = record_text(old)
    old_facts = declared.declared(found.lab, forward.touched, change_plan.touched_devices(plan))
    repaired = {(d.netns, d.line) for d in found.repaired}
    old_facts = [fact for fact in old_facts if (fact.netns, fact.line) not in repaired]
    files[APPLY] = template(f"{APPLY}.j2").render(
        lab=loaded.lab,
        origin=loaded.origin,
        version=__version__,
        digest=hashlib.sha256(files[TOPOLOGY].encode()).hexdigest(),
        script=APPLY,
        runtime=runtime(APPLY),
        changes=forward.changes,
        blocks=styles.apply(plan),
        undo_blocks=styles.apply(change_plan.undo(forward).plan),
        old_expect_places=declared.places(old_facts),
        old_record_text=old_text,
        old_digest=hashlib.sha256(old_text.encode()).hexdigest(),
        record_text=files[TOPOLOGY],
        **_facts(loaded.lab),
    )
    return files
