"""Limits of the Linux kernel that a valid lab can still hit at setup, found before anything runs.

Each was checked on kernel 6.18 in a throwaway namespace (names and the 68..65535 MTU range are checked
elsewhere, by the schema and the validator):

- a bridge takes at most 1023 ports (port numbers have 10 bits, BR_MAX_PORTS = 1024, and 0 is not one):
  the 1024th `ip link set ... master` fails with "Exchange full";
- IPv6 needs an MTU of at least 1280: `ip -6 addr add` on a device with a smaller MTU fails with
  "Invalid argument" (and lowering the MTU under an IPv6 address silently deletes the address);
- a per-device sysctl (`net.ipv4.conf.DEV.KEY`, `net.ipv6.conf.DEV.KEY`) exists only for a device the
  namespace has: writing one for another name fails with "No such file or directory".
"""

from nsgen.problems import Problem, field_path
from nsgen.topology.ends import BridgePort
from nsgen.topology.model import IPInterface, Lab
from nsgen.validate.context import Context

BRIDGE_MAX_PORTS = 1023
IPV6_MIN_MTU = 1280
_DEVICE_SYSCTLS = ("net.ipv4.conf.", "net.ipv6.conf.")
_ALWAYS_THERE = ("all", "default", "lo")


def check(ctx: Context) -> None:
    """The kernel-limits phase, on the model as far as the phases built it (the model phase's)."""
    if ctx.lab is not None:
        ctx.problems += problems(ctx.lab, ctx.source)


def problems(lab: Lab, source: str) -> list[Problem]:
    """One problem per kernel limit the lab exceeds; `source` names the topology in each."""
    return [Problem(source, field_path(path), message) for path, message in _findings(lab)]


def _findings(lab: Lab) -> list[tuple[tuple[str, ...], str]]:
    found = []
    ports: dict[str, int] = {}
    for link in lab.links:
        for end in (link.a, link.b):
            if isinstance(end, BridgePort):
                ports[end.node] = ports.get(end.node, 0) + 1
    for bridge in lab.bridges:
        count = ports.get(bridge.name, 0)
        if count > BRIDGE_MAX_PORTS:
            found.append(
                (
                    ("bridges", bridge.name),
                    f"bridge '{bridge.name}' has {count} ports; a Linux bridge takes at most {BRIDGE_MAX_PORTS}"
                    " (the kernel refuses more with 'Exchange full')",
                )
            )
        if message := _ipv6_mtu(bridge.mtu, bridge.addresses):
            found.append((("bridges", bridge.name, "mtu"), message))
    for ns in lab.namespaces:
        for iface in ns.interfaces:
            if message := _ipv6_mtu(iface.mtu, iface.addresses):
                found.append((("namespaces", ns.name, "interfaces", iface.name, "mtu"), message))
        devices = {iface.device for iface in ns.interfaces}
        for key, _ in ns.sysctls:
            device = _sysctl_device(key)
            if device is not None and device not in devices and device not in _ALWAYS_THERE:
                found.append(
                    (
                        ("namespaces", ns.name, "sysctls", key),
                        f"namespace '{ns.name}' has no device '{device}', so the kernel has no sysctl '{key}'",
                    )
                )
    for iface in lab.root_interfaces:
        if message := _ipv6_mtu(iface.mtu, iface.addresses):
            found.append((("host", "interfaces", iface.name, "mtu"), message))
    return found


def _ipv6_mtu(mtu: int | None, addresses: tuple[IPInterface, ...]) -> str | None:
    ipv6 = next((address for address in addresses if address.version == 6), None)
    if mtu is None or mtu >= IPV6_MIN_MTU or ipv6 is None:
        return None
    return f"mtu {mtu} is below {IPV6_MIN_MTU}, the least IPv6 allows, and the device has the IPv6 address {ipv6}"


def _sysctl_device(key: str) -> str | None:
    """The device a per-device sysctl names (`net.ipv4.conf.eth0.forwarding` -> `eth0`), else None."""
    for start in _DEVICE_SYSCTLS:
        if key.startswith(start):
            return key[len(start) :].split(".")[0]
    return None
