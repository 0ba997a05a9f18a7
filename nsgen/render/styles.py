"""How a plan is printed in a script: each style turns steps into word lists that templates only quote.

- tutorial: the guide's one command per line, `ip` in the root namespace and a namespace's alias
  (`ip0 addr add …`) inside it; also what demo.sh types out and the README shows.
- batched: the root namespace's commands in one `ip -batch`, then one batch per namespace, which the
  runtime runs side by side: the same commands, grouped by where they run.
- apply: apply.sh's one command a line, `ip -n NETNS …` inside a namespace (no aliases: apply.sh
  has none).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from nsgen.plan import commands
from nsgen.plan.commands import Command, Connect, Ping, Plan, Probe
from nsgen.topology.model import Lab


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
    """One `ip -batch` (root when `netns` is None), its comment, and the commands run before it, one a
    line (a namespace's sysctls, the FDB entries, the processes stopped before a teardown)."""

    comment: str
    netns: str | None
    commands: list[tuple[str, ...]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _comment(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n"))


def tutorial_words(command: Command | Ping | Connect | Probe, aliases: dict[str, str]) -> tuple[str, ...]:
    """A command as the guide writes it: `ip …`, `ALIAS …` inside a namespace, or a runtime function
    (verify.sh's `check reachable|unreachable HOLDER NODE NETNS ADDRESS HELD_IN PING…`, `check_tcp open|closed TARGET
    NODE CONNECT…`, `check_run PATTERN NODE COMMAND ARGV…`: what the report names, as status names a
    namespace, then what runs)."""
    if isinstance(command, Command):
        tool = command.tool
        if tool in _TOOL_WORDS:  # not `ip` (most commands of a lab)
            return _TOOL_WORDS[tool](command)
        return (aliases[command.netns] if command.netns else "ip", *command.argv)
    if isinstance(command, Ping):
        reach = "reachable" if command.reachable else "unreachable"
        return ("check", reach, command.holder, command.node, command.netns, str(command.address), command.held_in, *command.ping)
    if isinstance(command, Connect):
        return ("check_tcp", "open" if command.open else "closed", command.target, command.node, *command.argv)
    return ("check_run", command.output, command.node, command.command, *command.argv)  # a Probe


#: How tutorial_words writes a command of each tool but `ip` (as which any other is written).
_TOOL_WORDS: dict[str, Callable[[Command], tuple[str, ...]]] = {
    "sysctl": lambda command: ("set_sysctl", command.netns or "", *command.argv),
    "stop": lambda command: ("stop_processes", *command.argv),
    "tc": lambda command: ("tc", *(("-n", command.netns) if command.netns else ()), *command.argv),
    "service": lambda command: (f"{command.argv[0]}_service", command.netns or "", *command.argv[1:]),
    "iptables": lambda command: ("iptables", "-w", *command.argv),
    "accept": lambda command: ("accept", *command.argv),
    "forward_rule": lambda command: ("forward_rule", *command.argv),
    "bridge": lambda command: ("nsgen_bridge", *command.argv),
}


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


def demo_words(command: Command | Ping | Connect | Probe, aliases: dict[str, str]) -> tuple[str, ...]:
    """What demo.sh types and runs: the tutorial's words, a check as the ping, connection or command
    it is, bounded and judged as verify.sh judges it (`--fails`: no answer, or no connection,
    expected; `--within`: its kind's time; `--matches`: the pattern its output must match)."""
    if isinstance(command, Probe):
        return ("--within", "run", "--matches", command.output, *command.argv)
    if isinstance(command, Ping):
        return command.argv if command.reachable else ("--fails", *command.argv)
    if isinstance(command, Connect):
        return ("--within", "tcp", *(() if command.open else ("--fails",)), *command.argv)
    return tutorial_words(command, aliases)


@dataclass(frozen=True)
class Display:
    """A display function of the guide (displayLinks): its name, its comment, and its blocks."""

    function: str
    comment: str
    blocks: tuple[Block, ...]


#: The guide's display functions: name, what `ip` shows, and what the comment calls it.
DISPLAYS = (
    ("displayLinks", "link", "network links"),
    ("displayAddr", "addr", "ip addresses"),
    ("displayRoutes", "route", "routes"),
)


def displays(lab: Lab, functions: tuple[str, ...], as_root: tuple[str, ...] = ()) -> list[Display]:
    """The display functions named (commands.display): a block per namespace, through its alias, then
    one for the lab's root-namespace devices, each prefixed by `as_root` (helpers.sh's sudo wrapper)."""
    names = aliases(lab)
    result = []
    for function, what, called in (d for d in DISPLAYS if d[0] in functions):
        plan = commands.display(lab, what)  # type: ignore[arg-type]
        blocks = tuple(
            Block(_comment(s.comment), tuple((*(() if c.netns else as_root), *tutorial_words(c, names)) for c in s.commands))
            for s in plan
        )
        root = ", then of the lab's root-namespace devices" if len(plan) > len(lab.namespaces) else ""
        result.append(Display(function, f"display the {called} of every namespace{root}", blocks))
    return result


def demo(lab: Lab, plan: Plan) -> list[Block]:
    """The plan as demo.sh types it out."""
    names = aliases(lab)
    return [Block(_comment(s.comment), tuple(demo_words(c, names) for c in s.commands)) for s in plan]


#: What a namespace's batch line does, by its first word or a setting, in the words of its comment.
_NAMESPACE_PARTS = {
    "addr": "addresses",
    "mtu": "MTUs and MACs",
    "address": "MTUs and MACs",
    "addrgenmode": "no IPv6 link-local",
    "up": "interfaces up",
    "route": "routes",
}


def _parts(lines: list[tuple[str, ...]]) -> list[str]:
    """What a namespace's batch does, each part once, in the order of _NAMESPACE_PARTS."""
    seen = {lines[0] for lines in lines} | {word for words in lines if words[0] == "link" for word in words[4:]}
    return list(dict.fromkeys(part for key, part in _NAMESPACE_PARTS.items() if key in seen))


def _joined(lines: list[tuple[str, ...]]) -> list[str]:
    """A batch's lines, each device's `link set dev D …` settings joined onto its first such line
    (settings only ever move earlier: every later command still finds them made)."""
    first: dict[str, list[str]] = {}
    kept: list[Sequence[str]] = []
    for words in lines:
        if len(words) > 4 and words[0] == "link" and words[1] == "set" and words[2] == "dev":
            if words[3] in first:
                first[words[3]] += words[4:]
                continue
            first[words[3]] = joined = list(words)
            kept.append(joined)
            continue
        kept.append(words)
    return [" ".join(words) for words in kept]


def batched(lab: Lab, plan: Plan) -> list[Batch]:
    """The plan grouped by where it runs: the root namespace's commands in one batch (each step's
    comment kept as `#` lines, which `ip -batch` skips), then each namespace's own batch; a device's
    `link set` settings joined on one line. A multi-host lab's FDB entries (iproute2's `bridge`)
    follow the root batch, which makes their devices; the services and processes a teardown stops
    come first, and the services a setup starts last, once every batch is done."""
    stops = Batch("stop what still runs in the lab's namespaces, its services first (it would keep them alive)", None)
    started = Batch("start the services once every namespace's batch is done (await_batches)", None, [("await_batches",)])
    root_lines: list[tuple[str, ...]] = []
    last_step = None
    lines: dict[str, list[tuple[str, ...]]] = {ns.netns: [] for ns in lab.namespaces}
    before: dict[str, list[tuple[str, ...]]] = {ns.netns: [] for ns in lab.namespaces}  # commands before its batch
    fdb = Batch("the spanning bridges' FDB entries (iproute2's `bridge`), after the root namespace's batch", None)
    shaped = Batch("the conditions of links' root-namespace ends (tc), after the root namespace's batch", None)
    outside = Batch("the lab and the outside: forwarding, NAT, forwarded ports (iptables), after the root's batch", None)
    for step in plan:
        for command in step.commands:
            tool, netns = command.tool, command.netns
            if tool != "ip":  # `ip` commands (most of a lab's) go into the batches below, as do the tools' not named here
                if tool == "bridge":
                    fdb.commands.append(tutorial_words(command, {}))
                    continue
                if tool == "stop" or (tool == "service" and command.argv[0] == "stop"):
                    stops.commands.append(tutorial_words(command, {}))
                    continue
                if tool == "service":
                    started.commands.append(tutorial_words(command, {}))
                    continue
                if tool == "tc" and netns is None:
                    shaped.commands.append(tutorial_words(command, {}))
                    continue
                if tool == "iptables" or (tool == "sysctl" and netns is None):
                    outside.commands.append(tutorial_words(command, {}))
                    continue
                if tool in ("sysctl", "tc"):
                    before[netns or ""].append(tutorial_words(command, {}))
                    continue
            if netns is not None:
                lines[netns].append(command.argv)
            else:
                if last_step is not step:
                    root_lines += [("#", line) for line in step.comment.split("\n")]
                    last_step = step
                root_lines.append(command.argv)
    batches = [stops] if stops.commands else []
    batches += [Batch("the root namespace, in one batch", None, lines=_joined(root_lines))] if root_lines else []
    batches += [batch for batch in (fdb, shaped, outside) if batch.commands]
    for ns in lab.namespaces:
        words = lines[ns.netns]
        kinds = dict.fromkeys("its sysctls" if cmd[0] == "set_sysctl" else "its links' conditions" for cmd in before[ns.netns])
        prefix = f"{' and '.join(kinds)}, then " if kinds else ""
        comment = f"{ns.name}: {prefix}{', '.join(_parts(words))}, in one batch inside it"
        if words or before[ns.netns]:
            batches.append(Batch(comment, ns.netns, before[ns.netns], _joined(words)))
    return batches + ([started] if len(started.commands) > 1 else [])


def apply_words(command: Command) -> tuple[str, ...]:
    """A command as apply.sh writes it: `ip [-n NETNS] …`, `tc`, or a runtime function (`set_sysctl`,
    `stop_processes`, `start_service`, `nsgen_bridge`, `forward_rule`)."""
    if command.tool in _TOOL_WORDS:
        return tutorial_words(command, {})
    return ("ip", *(("-n", command.netns) if command.netns else ()), *command.argv)


def apply(plan: Plan) -> list[Block]:
    """A plan as apply.sh's blocks: a comment, then one command a line."""
    return [Block(_comment(s.comment), tuple(apply_words(c) for c in s.commands)) for s in plan]


def undo(plan: Plan) -> list[Block]:
    """A rollback as apply.sh's blocks (lab_undo_steps): as `apply`, but a deletion of a namespace or
    device names it first (`unless_foreign netns:NAME|link:NETNS:NAME... -- ip …`, NETNS empty for
    the root namespace), from what the command removes: the rollback leaves someone else's alone; and
    an iptables rule is deleted only where it is there, and added only where it is not (`rule_delete`,
    `rule_add`)."""
    return [Block(_comment(s.comment), tuple(_undo_words(c) for c in s.commands)) for s in plan]


def _undo_words(command: Command) -> tuple[str, ...]:
    if command.tool == "iptables" and (command.removes or command.makes):  # a rule the change may not have added, or deleted, yet
        return ("rule_delete" if command.removes else "rule_add", *apply_words(command)[1:])
    keys = [
        f"netns:{fact.netns}" if fact.kind == "namespace" else f"link:{fact.netns or ''}:{fact.device}"
        for fact in command.removes
        if fact.kind in ("namespace", "device")
    ]
    return ("unless_foreign", *keys, "--", *apply_words(command)) if keys else apply_words(command)
