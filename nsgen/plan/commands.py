"""The commands a lab's scripts run, each built by a small function returning its argv.

A command is an argv and where it runs (the root namespace, or inside a named namespace): `ip`
commands name every operand with its keyword (`link add name A`, `dev X`, `peer name B`), so no
name that validation accepts can be read by iproute2 as a keyword or an abbreviation of one.
"""

from dataclasses import dataclass
from typing import Literal

from nsgen.topology.model import Bridge, Interface, IPInterface, Route, VethLink

Tool = Literal["ip", "sysctl", "ping", "bridge"]


@dataclass(frozen=True)
class Command:
    """`tool ARGV` run in the root namespace (`netns` None) or inside the namespace `netns`.

    `ip` takes iproute2's words; `sysctl` (KEY VALUE) sets a sysctl; `ping` (FAMILY ADDRESS HOLDER
    EXPECTED) is one reachability check, EXPECTED `reachable` or `unreachable`; `bridge` takes
    iproute2's `bridge` words (a multi-host lab's FDB entries).
    """

    argv: tuple[str, ...]
    netns: str | None = None
    tool: Tool = "ip"


@dataclass(frozen=True)
class Step:
    """What a reader sees as one step of the guide: a comment (one or more lines) and its commands."""

    comment: str
    commands: tuple[Command, ...]


Plan = tuple[Step, ...]


def address_words(address: IPInterface) -> tuple[str, ...]:
    """An address as the guide writes it (bare for a single host), IPv6 with `nodad`: the lab's are unique."""
    text = str(address)  # ADDRESS/PREFIX; the bare address for a single host
    text = text.partition("/")[0] if address.network.prefixlen == address.max_prefixlen else text
    return (text, "nodad") if address.version == 6 else (text,)


def tuning_words(iface: Interface) -> tuple[str, ...]:
    return (*(("mtu", str(iface.mtu)) if iface.mtu else ()), *(("address", iface.mac) if iface.mac else ()))


def bridge_add(br: Bridge, v4: bool) -> list[Command]:
    """Make a bridge in the root namespace: its addresses, MTU, no link-local in an IPv4-only lab, up."""
    commands = [Command(("link", "add", "name", br.device, "type", "bridge"))]
    commands += [addr_command("add", address, br.device, None) for address in br.addresses]
    commands += [Command(("link", "set", "dev", br.device, "mtu", str(br.mtu)))] if br.mtu else []
    commands += [Command(("link", "set", "dev", br.device, "addrgenmode", "none"))] if v4 else []
    return [*commands, Command(("link", "set", "dev", br.device, "up"))]


def veth_add(link: VethLink) -> Command:
    """Make a veth pair, each end directly where it lives, a bridge port plugged in as it is made."""
    first, second = link.creation_order
    words = ["link", "add", "name", first.device]
    words += ["netns", first.netns] if first.netns else []
    words += ["master", first.bridge] if first.bridge else []
    words += ["type", "veth", "peer", "name", second.device, "netns", second.netns or ""]
    return Command(tuple(words))


def route_command(verb: Literal["add", "del"], route: Route, netns: str) -> Command:
    """`route add|del DESTINATION [via GATEWAY] [dev DEVICE]` inside `netns`."""
    words = ["route", verb, route.destination]
    words += ["via", str(route.via)] if route.via else []
    words += ["dev", route.dev] if route.dev else []
    return Command(tuple(words), netns)


def addr_command(verb: Literal["add", "del"], address: IPInterface, device: str, netns: str | None) -> Command:
    """`addr add|del ADDRESS dev DEVICE` (in the root namespace when `netns` is None)."""
    words = address_words(address) if verb == "add" else address_words(address)[:1]
    return Command(("addr", verb, *words, "dev", device), netns)


def step(comment: str, commands: list[Command]) -> list[Step]:
    """One step of a plan, or none when it has no command."""
    return [Step(comment, tuple(commands))] if commands else []
