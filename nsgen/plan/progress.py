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
from nsgen.topology.facts import KINDS, Difference, Fact
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


def _made(command: Command, routes: dict[tuple[str | None, tuple[str, ...]], str]) -> list[Key]:
    """The facts `command` makes on its own, by key (`routes`: the lab's routes' text, by where each is
    added and its `route add` words)."""
    words, netns, tool = command.argv, command.netns, command.tool
    if tool != "ip":
        if tool == "sysctl":
            return [(netns, "sysctl", words[0], "")]
        if tool == "iptables":
            return [(netns, "iptables", "", " ".join(words))]
        if tool == "service":
            return [(netns, "service", words[1], "")] if words[0] == "start" else []
        if tool == "tc":
            device = words[words.index("dev") + 1] if words[:2] == ("qdisc", "add") else None
            return [(netns, kind, device, "") for kind in ("qdisc", "rate")] if device else []
        return []
    verb = words[:2]
    if verb == ("link", "set"):  # most of a lab's commands: `link set dev D SETTINGS…`
        if words[2:3] != ("dev",):
            return []
        device, settings = words[3], words[4:]
        if settings == ("up",):
            return [(netns, "up", device, "")]
        if "mtu" not in settings and "address" not in settings:
            return []
        named = dict(itertools.pairwise(settings))
        made = [(netns, "mtu", device, named["mtu"])] if "mtu" in named else []
        return made + ([(netns, "mac", device, named["address"].lower())] if "address" in named else [])
    if verb == ("netns", "add"):
        return [(words[2], "namespace", "", "")]
    if verb == ("link", "add"):
        return [(where, "device", name, "") for where, name in made_devices(command)]
    if verb == ("route", "add"):
        text = routes.get((netns, words))
        return [(netns, "route", "", text)] if text is not None else []
    if verb == ("addr", "add"):
        return [(netns, "address", words[-1], words[2].split("/")[0])]
    return []


#: The kinds of fact whose key holds the value a command names (an address's without its prefix length).
_VALUED = frozenset(("mtu", "mac", "route", "iptables"))


def stages(lab: Lab, plan: Plan, facts: list[Fact] | None = None) -> list[Stage]:
    """Each step of `plan` (the lab's setup) with the declared facts it makes (`facts`: the lab's
    declared state, if worked out already): one pass over the commands, one over the facts."""
    routes = {(ns.netns, route_command("add", r, ns.netns).argv): r.text for ns in lab.namespaces for r in ns.routes}
    maker: dict[Key, int] = {}
    creator: dict[tuple[str | None, str], int] = {}
    for index, step in enumerate(plan):
        for command in step.commands:
            if not isinstance(command, Command):
                continue
            if command.tool == "ip" and command.argv[:2] == ("link", "add"):  # _made's devices, and their creator
                for device in made_devices(command):
                    maker.setdefault((device[0], "device", device[1], ""), index)
                    creator.setdefault(device, index)
                continue
            for key in _made(command, routes):
                maker.setdefault(key, index)
    last = len(plan) - 1
    owned: list[list[Fact]] = [[] for _ in plan]
    for fact in declared(lab) if facts is None else facts:  # each by its Key (a lab of 5000 namespaces declares 50000)
        kind = fact.kind
        value = fact.value.split("/")[0] if kind == "address" else fact.value if kind in _VALUED else ""
        index = maker.get((fact.netns, kind, fact.device, value))
        owned[creator.get((fact.netns, fact.device), last) if index is None else index].append(fact)
    return [Stage(number, step, tuple(made)) for number, (step, made) in enumerate(zip(plan, owned, strict=True), 1)]


def repair(fact: Fact) -> Command | None:
    """The command that gives an existing object `fact`'s one value (an MTU, a MAC, a master), by its
    kind's one definition, where its step's commands (a `link add`) cannot be run again; None for
    the rest (a device set up: its step's `link set up` repairs it)."""
    kind = KINDS[fact.kind]
    if not kind.keyed:
        return None
    argv = kind.make(fact)
    return Command(tuple(argv), fact.netns, kind.tool) if argv is not None else None  # type: ignore[arg-type]


def repairs(lacking: tuple[Difference, ...]) -> list[Command] | None:
    """What repairs a step whose objects are all there but some with another value: each fact's
    repair; None where the step's own commands are what it lacks (an object missing)."""
    commands = [repair(d.fact) if d.kind == "different" else None for d in lacking]
    return None if None in commands else commands  # type: ignore[return-value]
