"""Where a learner stands: the lab's declared state, step by step of its setup plan.

Each fact of the declared state (`nsgen.plan.declared`) belongs to the first setup step whose command
makes it: a namespace to `netns add`, an address to its `addr add`, a route to its `route add`; a fact
no command makes on its own (a veth's MTU of 1500, a bridge port's master) to the step that makes its
device. `nsgen check` and check.sh then compare the kernel with each step's facts, in order: the steps
already done, and the first one not done with what it lacks.
"""

import re
import shlex
from dataclasses import dataclass

from nsgen.plan.commands import Command, Made, Plan, Step
from nsgen.plan.declared import declared
from nsgen.topology.facts import Difference, Fact, repair_words
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


#: The kinds of fact whose key holds the value a command names (an address's without its prefix length).
_VALUED = frozenset(("mtu", "mac", "route", "iptables", "sysctl"))


def stages(lab: Lab, plan: Plan, facts: list[Fact] | None = None) -> list[Stage]:
    """Each step of `plan` (the lab's setup) with the declared facts it makes (`facts`: the lab's
    declared state, if worked out already): one pass over the commands (what each `makes`), one
    over the facts. A fact no command makes on its own (a veth's MTU of 1500, a bridge port's
    master) goes to the step that makes its device."""
    maker: dict[Made, int] = {}
    creator: dict[tuple[str | None, str], int] = {}
    for index, step in enumerate(plan):
        for command in step.commands:
            for made in command.makes if isinstance(command, Command) else ():
                maker.setdefault(made, index)
                if made.kind == "device":
                    creator.setdefault((made.netns, made.device), index)
    last = len(plan) - 1
    owned: list[list[Fact]] = [[] for _ in plan]
    for fact in declared(lab) if facts is None else facts:  # each by its key (a lab of 5000 namespaces declares 50000)
        kind = fact.kind
        value = fact.value.split("/")[0] if kind == "address" else fact.value if kind in _VALUED else ""
        index = maker.get(Made(fact.netns, kind, fact.device, value))
        owned[creator.get((fact.netns, fact.device), last) if index is None else index].append(fact)
    return [Stage(number, step, tuple(made)) for number, (step, made) in enumerate(zip(plan, owned, strict=True), 1)]


def repair(fact: Fact) -> str | None:
    """What gives an existing object `fact`'s one value (an MTU, a MAC, a master), from its kind's one
    definition (`facts.repair_words`), as `ip [-n NETNS] …` (check.sh writes it the same way), where
    its step's commands (a `link add`) cannot be run again; None for the rest (a device set up: its
    step's `link set up` repairs it)."""
    words = repair_words(fact.kind)
    if words is None:
        return None
    filled = [word.replace("{device}", fact.device).replace("{value}", fact.value) for word in words]
    return shlex.join(["ip", *(["-n", fact.netns] if fact.netns else []), *filled])


def repairs(lacking: tuple[Difference, ...]) -> list[str] | None:
    """What repairs a step whose objects are all there but some with another value: each fact's
    repair; None where the step's own commands are what it lacks (an object missing)."""
    fixes = [repair(d.fact) if d.kind == "different" else None for d in lacking]
    return None if None in fixes else fixes  # type: ignore[return-value]
