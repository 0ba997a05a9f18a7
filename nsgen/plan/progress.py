"""Where a learner stands: the lab's declared state, step by step of its setup plan.

Each fact of the declared state (`nsgen.plan.declared`) belongs to the first setup step whose command
makes it: a namespace to `netns add`, an address to its `addr add`, a route to its `route add`; a fact
no command makes on its own (a veth's MTU of 1500, a bridge port's master) to the step that makes its
device. `nsgen check` and check.sh then compare the kernel with each step's facts, in order: the steps
already done, and the first one not done with what it lacks.
"""

import itertools
import re
from dataclasses import dataclass

from nsgen.plan.commands import Command, Plan, Step, route_command
from nsgen.plan.declared import Expect, declared
from nsgen.topology.model import Lab


@dataclass(frozen=True)
class Stage:
    """A setup step (numbered from 1) and the facts it makes."""

    number: int
    step: Step
    facts: tuple[Expect, ...]

    @property
    def label(self) -> str:
        return short(self.step.comment)


def short(comment: str) -> str:
    """A step's comment in its first words: up to a full stop, a bracket or the end of its first line."""
    return re.split(r"\. | \(|\n", comment)[0].rstrip(":,; ")


def made_devices(command: Command) -> list[tuple[str | None, str]]:
    """The devices a `link add` makes, with the namespace each lives in (None: the root namespace)."""
    words = command.argv
    if command.tool != "ip" or words[:2] != ("link", "add"):
        return []
    made, netns, name = [], None, None
    for word, value in itertools.pairwise(words):
        if word == "peer":
            made.append((netns, name))
            netns, name = None, None
        elif word == "name":
            name = value
        elif word == "netns":
            netns = value or None
    return [*made, (netns, name)] if name else made


def _makes(command: Command, fact: Expect, routes: dict[tuple[str | None, str], Command]) -> bool:
    """Whether `command` makes `fact` on its own."""
    words, here = command.argv, command.netns == fact.netns
    if fact.kind == "namespace":
        return words[:2] == ("netns", "add") and words[2] == fact.netns
    if fact.kind == "device":
        return (fact.netns, fact.device) in made_devices(command)
    if fact.kind == "route":
        return routes.get((fact.netns, fact.value)) == command
    if fact.kind == "sysctl":
        return command.tool == "sysctl" and here and words[0] == fact.device
    if fact.kind == "service":
        return command.tool == "service" and here and words[:2] == ("start", fact.device)
    if fact.kind in ("qdisc", "rate"):
        return command.tool == "tc" and here and words[:2] == ("qdisc", "add") and fact.device in words
    if command.tool != "ip" or not here:
        return False
    if fact.kind == "address":
        return words[:2] == ("addr", "add") and words[-1] == fact.device and words[2].split("/")[0] == fact.value.split("/")[0]
    setting = words[:4] == ("link", "set", "dev", fact.device)
    if fact.kind == "up":
        return setting and words[4:] == ("up",)
    if fact.kind in ("mtu", "mac"):
        key = "mtu" if fact.kind == "mtu" else "address"
        return setting and key in words and words[words.index(key) + 1].lower() == fact.value
    return False


def stages(lab: Lab, plan: Plan) -> list[Stage]:
    """Each step of `plan` (the lab's setup) with the declared facts it makes."""
    routes = {(ns.netns, r.text): route_command("add", r, ns.netns) for ns in lab.namespaces for r in ns.routes}
    creator = {
        device: index for index, step in enumerate(plan) for c in step.commands if isinstance(c, Command)
        for device in made_devices(c)
    }
    owned: list[list[Expect]] = [[] for _ in plan]
    for fact in declared(lab):
        index = next(
            (i for i, step in enumerate(plan) for c in step.commands if isinstance(c, Command) and _makes(c, fact, routes)),
            creator.get((fact.netns, fact.device), len(plan) - 1),
        )
        owned[index].append(fact)
    return [Stage(number, step, tuple(facts)) for number, (step, facts) in enumerate(zip(plan, owned, strict=True), 1)]
