"""Fact kinds: the one definition of every kind of fact a lab makes and the kernel is read into.

A fact is one line in the kernel's words, at a place (a namespace, or the root namespace). A kind
of a device is written `DEVICE KIND [VALUE]` (`eth0 mtu 1500`, `eth0 up`); any other kind leads
with its own word (`route default via 10.0.0.1`, `sysctl net.ipv4.ip_forward=1`). Each `Kind` says
how its line reads, whether it holds one value (a wrong one is `different`, not missing and extra),
where one the lab does not declare counts as `extra`, and what makes a declared one or removes an
extra one. The runtime reads the kernel into these lines once, in bash (`kernel_facts` in
templates/runtime/_facts.sh.j2), and compares them with the declared ones there (`compare_facts`), taking
every property of a kind from `bash_table()`: verify.sh, check.sh, apply.sh and `nsgen status` run
that one reader and that one comparison. A new kind is one entry of `KINDS`, and its words in the reader.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

#: argv of a kind's tool for a fact (its namespace is the fact's), or None: made by its step of the plan.
Argv = tuple[str, ...] | None


class Extra(str, Enum):
    """Where a fact of a kind the lab does not declare is extra (beyond them, the kernel's own)."""

    never = "never"  # the kernel's own values (an MTU, a MAC, `up`): a wrong one is `different`
    namespace = "namespace"  # anywhere in a lab namespace (a device, a route, a policy rule)
    declared_device = "declared-device"  # of a device the place declares (an address, a qdisc)
    anywhere = "anywhere"  # in a lab namespace or on a lab device of the root (a bridge port, a service)


@dataclass(frozen=True)
class Kind:
    """One kind of fact: its line (`words`, with `{device}` and `{value}`), one value per key
    (`keyed`: the key is the line but its last word), where an undeclared one is `extra`, the
    word a lacking flag is said to be (`absent`: `eth0 up` lacking is `different (down)`), and the
    argv of its `tool` (`ip`, `sysctl`, `iptables`, `bridge`) that makes a declared fact or removes an extra one."""

    name: str
    words: str
    keyed: bool = False
    extra: Extra = Extra.never
    absent: str = ""
    tool: str = "ip"
    make: Callable[["Fact"], Argv] = lambda fact: None
    remove: Callable[["Fact"], Argv] = lambda fact: None

    @property
    def of_device(self) -> bool:
        return self.words.startswith("{device} ")

    @property
    def pattern(self) -> re.Pattern[str]:
        value = r"(?P<value>[^ ]+)" if self.keyed else r"(?P<value>.+)"
        text = re.escape(self.words).replace(r"\{device\}", r"(?P<device>[^ =]+)").replace(r"\{value\}", value)
        return re.compile(f"^{text}$")


def _rule(fact: "Fact") -> Argv:
    family, words = (("-6",), fact.value.split()[1:]) if fact.value.startswith("-6 ") else ((), fact.value.split())
    return (*family, "rule", "del", "priority", words[0])


#: The kinds of a link condition, in the order tc prints them: the root qdisc (tbf or netem), netem's
#: delay, jitter and loss, the rate.
CONDITIONED = ("qdisc", "delay", "jitter", "loss", "rate")

#: Every kind of fact, in the order status and verify.sh name them.
KINDS = {
    kind.name: kind
    for kind in (
        Kind("namespace", "namespace"),
        Kind("device", "device {device}", extra=Extra.namespace, remove=lambda f: ("link", "del", "dev", f.device)),
        Kind("up", "{device} up", absent="down", make=lambda f: ("link", "set", "dev", f.device, "up")),
        Kind(
            "address",
            "{device} address {value}",
            extra=Extra.declared_device,
            make=lambda f: ("addr", "add", f.value, "dev", f.device),
            remove=lambda f: ("addr", "del", f.value, "dev", f.device),
        ),
        Kind("mtu", "{device} mtu {value}", keyed=True, make=lambda f: ("link", "set", "dev", f.device, "mtu", f.value)),
        Kind("mac", "{device} mac {value}", keyed=True, make=lambda f: ("link", "set", "dev", f.device, "address", f.value)),
        Kind(
            "master",
            "{device} master {value}",
            keyed=True,
            extra=Extra.anywhere,
            make=lambda f: ("link", "set", "dev", f.device, "master", f.value),
            remove=lambda f: ("link", "set", "dev", f.device, "nomaster"),
        ),
        # a spanning bridge's VXLAN port (a multi-host lab's) floods to each other machine: its all-zero FDB entries
        Kind(
            "floods",
            "{device} floods {value}",
            extra=Extra.anywhere,  # read of the lab's own devices only
            tool="bridge",
            make=lambda f: ("fdb", "append", "00:00:00:00:00:00", "dev", f.device, "dst", f.value),
            remove=lambda f: ("fdb", "del", "00:00:00:00:00:00", "dev", f.device, "dst", f.value),
        ),
        # a link condition (what an end sends): its root qdisc, and the values in the words `tc qdisc show` prints
        *(Kind(name, f"{{device}} {name} {{value}}", keyed=True, extra=Extra.declared_device) for name in CONDITIONED),
        Kind(
            "route",
            "route {value}",
            extra=Extra.namespace,
            make=lambda f: ("route", "add", *f.value.split()),
            remove=lambda f: ("route", "del", *f.value.split()),
        ),
        Kind("rule", "rule {value}", extra=Extra.namespace, remove=_rule),
        Kind("sysctl", "sysctl {device}={value}", tool="sysctl", make=lambda f: (f.device, f.value)),
        # a rule of the lab's NAT or forwarded ports, in the words `iptables -S` prints it (its
        # comment unquoted, no `-m tcp` after `-p tcp`): read in the root namespace's nat table
        Kind(
            "iptables",
            "iptables {value}",
            extra=Extra.anywhere,
            tool="iptables",
            make=lambda f: tuple(f.value.split()),
            remove=lambda f: tuple("-D" if word == "-A" else word for word in f.value.split()),
        ),
        Kind("service", "service {device} {value}", keyed=True, extra=Extra.anywhere),
    )
}

#: A route via a gateway names its device too (`route 10.0.2.0/24 via 10.0.1.1 dev eth0`): a
#: declared route without one (`route 10.0.2.0/24 via 10.0.1.1`) is the same route.
ROUTE_VIA = re.compile(r"^(route .* via [^ ]+) dev [^ ]+$")

#: The words a line of a kind that is not of a device leads with.
LEADING = tuple(kind.name for kind in KINDS.values() if not kind.of_device)


@dataclass(frozen=True)
class Fact:
    """One fact at a place: `netns` None is the root namespace (its `node` is `host`)."""

    netns: str | None
    node: str
    kind: str
    device: str = ""
    value: str = ""

    def __init__(self, netns: str | None, node: str, kind: str, device: str = "", value: str = "") -> None:
        # the frozen dataclass's own __init__, without its object.__setattr__ per field: a lab of 5000
        # namespaces declares 50000 facts, and its files read them twice
        fields = self.__dict__
        fields["netns"], fields["node"], fields["kind"], fields["device"], fields["value"] = netns, node, kind, device, value

    @property
    def line(self) -> str:
        """The fact in its words, as the runtime's reader writes the kernel's state."""
        return KINDS[self.kind].words.format(device=self.device, value=self.value)

    @property
    def label(self) -> str:
        return f"{self.node}: {self.line}"

    @property
    def key(self) -> str:
        """What identifies it among the facts of its place: a keyed fact's line but its value."""
        return self.line.rsplit(" ", 1)[0] if KINDS[self.kind].keyed else self.line

    def make(self) -> Argv:
        return KINDS[self.kind].make(self)

    def remove(self) -> Argv:
        return KINDS[self.kind].remove(self)


def kind_of(line: str) -> str:
    """The kind of a fact's line: its first word, or a device's second."""
    first, _, rest = line.partition(" ")
    return first if first in LEADING else rest.split(" ", 1)[0]


def parse(line: str, netns: str | None, node: str) -> Fact:
    """A fact from its line (the reader's, or a declared one): the one place a line is taken apart."""
    kind = kind_of(line)
    if kind not in KINDS or not (match := KINDS[kind].pattern.match(line)):
        raise ValueError(f"not a fact's line: {line!r}")
    found = match.groupdict()
    return Fact(netns, node, kind, found.get("device") or "", found.get("value") or "")


@dataclass(frozen=True)
class Difference:
    """A declared `fact` the kernel lacks (`missing`) or holds with another value (`different`,
    `have` its value), or one it has beyond the declared ones (`extra`)."""

    fact: Fact
    kind: str  # missing, different, extra
    have: str = ""

    @property
    def netns(self) -> str | None:
        return self.fact.netns

    @property
    def node(self) -> str:
        return self.fact.node

    @property
    def line(self) -> str:
        return self.fact.line

    def __str__(self) -> str:
        return f"{self.node}: {self.line}: {self.kind}" + (f" ({self.have})" if self.kind == "different" else "")


def bash_table() -> dict[str, str]:
    """The kinds' properties as the runtime's comparison takes them: bash words, generated here."""
    kinds = KINDS.values()
    return {
        "leading": " ".join(f"[{name}]=1" for name in LEADING),
        "keyed": " ".join(f"[{k.name}]=1" for k in kinds if k.keyed),
        "extra": " ".join(f"[{k.name}]={k.extra.value}" for k in kinds if k.extra is not Extra.never),
        "absent": " ".join(f"[{k.name}]={k.absent}" for k in kinds if k.absent),
        "route_via": ROUTE_VIA.pattern,
        # what gives a keyed fact its value, with {device} and {value} in place (`nsgen check`'s repair)
        "repair": " ".join(f"[{k.name}]='{' '.join(words)}'" for k in kinds if k.keyed and (words := repair_words(k.name))),
    }


def repair_words(kind: str) -> tuple[str, ...] | None:
    """The words of `kind`'s `make` with `{device}` and `{value}` in place, for a keyed kind of the
    `ip` tool; None for the rest (their step's own commands make them)."""
    found = KINDS[kind]
    if not found.keyed or found.tool != "ip":
        return None
    return found.make(Fact(None, "", kind, "{device}", "{value}"))
