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
from nsgen.plan.declared import declared
from nsgen.topology.facts import Fact
from nsgen.topology.model import Lab


@dataclass(frozen=True)
class Stage:
    """A setup step (numbered from 1) and the facts it makes."""

    number: int
    step: Step
    facts: tuple[Fact, ...]

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


#: A fact by what identifies it: its namespace, kind, device, and the value a command names (an
#: address's, an MTU's, a MAC's, a route's text; none for the rest).
Key = tuple[str | None, str, str, str]


def _key(fact: Fact) -> Key:
    value = fact.value.split("/")[0] if fact.kind == "address" else fact.value
    return (fact.netns, fact.kind, fact.device, value if fact.kind in ("address", "mtu", "mac", "route", "iptables") else "")


def _made(command: Command, routes: dict[Command, str]) -> list[Key]:
    """The facts `command` makes on its own, by key."""
    words, netns = command.argv, command.netns
    if command.tool == "sysctl":
        return [(netns, "sysctl", words[0], "")]
    if command.tool == "iptables":
        return [(netns, "iptables", "", " ".join(words))]
    if command.tool == "service":
        return [(netns, "service", words[1], "")] if words[0] == "start" else []
    if command.tool == "tc":
        device = words[words.index("dev") + 1] if words[:2] == ("qdisc", "add") else None
        return [(netns, kind, device, "") for kind in ("qdisc", "rate")] if device else []
    if command.tool != "ip":
        return []
    if words[:2] == ("netns", "add"):
        return [(words[2], "namespace", "", "")]
    if words[:2] == ("link", "add"):
        return [(where, "device", name, "") for where, name in made_devices(command)]
    if words[:2] == ("route", "add") and command in routes:
        return [(netns, "route", "", routes[command])]
    if words[:2] == ("addr", "add"):
        return [(netns, "address", words[-1], words[2].split("/")[0])]
    if words[:3] != ("link", "set", "dev"):
        return []
    device, settings = words[3], dict(itertools.pairwise(words[4:]))
    made = [(netns, "up", device, "")] if words[4:] == ("up",) else []
    made += [(netns, "mtu", device, settings["mtu"])] if "mtu" in settings else []
    return made + ([(netns, "mac", device, settings["address"].lower())] if "address" in settings else [])


def stages(lab: Lab, plan: Plan) -> list[Stage]:
    """Each step of `plan` (the lab's setup) with the declared facts it makes: one pass over the
    commands, one over the facts."""
    routes = {route_command("add", r, ns.netns): r.text for ns in lab.namespaces for r in ns.routes}
    maker: dict[Key, int] = {}
    creator: dict[tuple[str | None, str], int] = {}
    for index, step in enumerate(plan):
        for command in (c for c in step.commands if isinstance(c, Command)):
            for key in _made(command, routes):
                maker.setdefault(key, index)
            for device in made_devices(command):
                creator.setdefault(device, index)
    owned: list[list[Fact]] = [[] for _ in plan]
    for fact in declared(lab):
        index = maker.get(_key(fact), creator.get((fact.netns, fact.device), len(plan) - 1))
        owned[index].append(fact)
    return [Stage(number, step, tuple(facts)) for number, (step, facts) in enumerate(zip(plan, owned, strict=True), 1)]
