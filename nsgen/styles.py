"""How a plan is printed in a script: each style turns steps into word lists that templates only quote.

- tutorial: the guide's one command per line, `ip` in the root namespace and a namespace's alias
  (`ip0 addr add …`) inside it; also what demo.sh types out and the README shows.
- batched: the root namespace's commands in one `ip -batch`, then one batch per namespace, which the
  runtime runs side by side: the same commands, grouped by where they run.
"""

from dataclasses import dataclass, field
from enum import Enum

from nsgen.model import Lab
from nsgen.plan import Command, Plan


class Style(str, Enum):
    """How setup.sh prints its plan."""

    batched = "batched"
    tutorial = "tutorial"


#: The README lists at most this many commands of a step, then says how many more there are.
README_COMMANDS_PER_STEP = 12


@dataclass(frozen=True)
class Block:
    """A comment (its lines) and the commands under it, each a list of words for the shell."""

    comment: tuple[str, ...]
    lines: tuple[tuple[str, ...], ...]
    more: int = 0  # commands left out (the README's short form)


@dataclass
class Batch:
    """One `ip -batch` (root when `netns` is None), its comment, and the sysctls run before it."""

    comment: str
    netns: str | None
    sysctls: list[tuple[str, ...]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _comment(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n"))


def tutorial_words(command: Command, aliases: dict[str, str]) -> tuple[str, ...]:
    """A command as the guide writes it: `ip …`, `ALIAS …` inside a namespace, or a runtime function."""
    if command.tool == "sysctl":
        return ("set_sysctl", command.netns or "", *command.argv)
    if command.tool == "ping":
        family, address, holder, expected = command.argv
        check = "check" if expected == "reachable" else "check_unreachable"
        return (check, command.netns or "", family, address, holder)
    if command.tool == "bridge":
        return ("nsgen_bridge", *command.argv)
    return (aliases[command.netns] if command.netns else "ip", *command.argv)


def aliases(lab: Lab) -> dict[str, str]:
    """Each namespace's helper, by its kernel name: ip0, ip1, … unless the topology names it."""
    return {ns.netns: ns.alias for ns in lab.namespaces}


def tutorial(lab: Lab, plan: Plan, limit: int | None = None) -> list[Block]:
    """The plan one command per line; with `limit`, at most that many commands a step."""
    names = aliases(lab)
    blocks = []
    for step in plan:
        shown = step.commands if limit is None else step.commands[:limit]
        lines = tuple(tutorial_words(command, names) for command in shown)
        blocks.append(Block(_comment(step.comment), lines, len(step.commands) - len(shown)))
    return blocks


def demo_words(command: Command, aliases: dict[str, str]) -> tuple[str, ...]:
    """What demo.sh types and runs: the tutorial's words, a check as the ping it is."""
    if command.tool != "ping":
        return tutorial_words(command, aliases)
    _, address, _, expected = command.argv
    ping = ("ip", "netns", "exec", command.netns or "", "ping", "-c", "1")
    return ("--fails", *ping, "-W", "1", address) if expected == "unreachable" else (*ping, address)


def demo(lab: Lab, plan: Plan) -> list[Block]:
    """The plan as demo.sh types it out."""
    names = aliases(lab)
    return [Block(_comment(s.comment), tuple(demo_words(c, names) for c in s.commands)) for s in plan]


_NAMESPACE_PARTS = (
    (("addr", "add"), "addresses"),
    (("link", "set", "mtu"), "MTUs and MACs"),
    (("link", "set", "address"), "MTUs and MACs"),
    (("link", "set", "addrgenmode"), "no IPv6 link-local"),
    (("link", "set", "up"), "interfaces up"),
    (("route", "add"), "routes"),
)


def _parts(words: tuple[str, ...]) -> list[str]:
    """What a namespace's batch line does, in the words of its comment."""
    return [part for keys, part in _NAMESPACE_PARTS if all(key in words for key in keys)]


def batched(lab: Lab, plan: Plan) -> list[Batch]:
    """The root namespace's commands in one batch (each step's comment kept in it as `#` lines,
    which `ip -batch` skips), then each namespace's, in the plan's order."""
    root = Batch("the root namespace, in one batch", None)
    fdb = Batch("the spanning bridges' FDB entries (iproute2's `bridge`), after the root namespace's batch", None)
    by_netns = {ns.netns: Batch(ns.name, ns.netns) for ns in lab.namespaces}
    parts: dict[str, list[str]] = {ns.netns: [] for ns in lab.namespaces}
    for step in plan:
        if any(command.netns is None and command.tool != "bridge" for command in step.commands):
            root.lines += [f"# {line}" for line in step.comment.split("\n")]
        for command in step.commands:
            batch = root if command.netns is None else by_netns[command.netns]
            if command.tool == "bridge":
                fdb.sysctls.append(tutorial_words(command, {}))
                continue
            if command.tool == "sysctl":
                batch.sysctls.append(tutorial_words(command, {}))
                continue
            batch.lines.append(" ".join(command.argv))
            if command.netns is not None:
                parts[command.netns] += [p for p in _parts(command.argv) if p not in parts[command.netns]]
    for netns, batch in by_netns.items():
        sysctls = "its sysctls, then " if batch.sysctls else ""
        batch.comment = f"{batch.comment}: {sysctls}{', '.join(parts[netns])}, in one batch inside it"
    return [b for b in (root, fdb, *by_netns.values()) if b.lines or b.sysctls]
