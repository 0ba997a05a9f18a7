"""The guide's Parts III–V: a CNI network's options, validated, rendered into plugins, config and scripts."""

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from nsgen import __version__
from nsgen.problems import Problem, TopologyError
from nsgen.render import templates
from nsgen.topology import model

#: The spec versions nsgen-bridge speaks; results are shaped for the one the config asks for.
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
#: What a conflist of a version lists as `cniVersions`: older runtimes, which read only `cniVersion`, get
#: the first; runtimes that know 1.1.0 (its STATUS and GC) pick the highest they speak.
CNI_VERSIONS = {"1.1.0": ("1.0.0", "1.1.0")}
#: Rendered files that are programs; everything else is written 0644.
EXECUTABLES = frozenset({"dummy", "nsgen-bridge", "install.sh", "containerd/run-container.sh"})
#: Where problems with the options are reported from.
SOURCE = "nsgen cni"

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

# A CNI network name (also a file name) and a Linux interface name (at most 15 bytes).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


@dataclass(frozen=True)
class CniOptions:
    """One CNI network. The defaults are the `cni` preset committed under generated/cni/."""

    name: str = "nsgen-net"
    bridge: str = "cni-nsgen0"
    subnet: str = "10.244.0.0/24"
    gateway: str | None = None  # None: the subnet's first host address
    range: str | None = None  # None: the subnet's hosts after the gateway
    cni_version: str = "1.0.0"
    portmap: bool = True  # install.sh drops it where the reference portmap is not installed
    subnet6: str | None = None  # None: IPv4 only
    gateway6: str | None = None
    range6: str | None = None
    is_gateway: bool = True  # the reference bridge's isGateway: gateway addresses, default routes, forwarding
    ip_masq: bool = True  # ipMasq: the subnet's traffic leaving the host masqueraded
    hairpin: bool = True  # hairpinMode: hairpin on each bridge port

    def command_line(self) -> str:
        """The `nsgen cni` command that renders exactly these options (named in every generated header)."""
        given = {
            "--gateway": self.gateway, "--range": self.range, "--subnet6": self.subnet6,
            "--gateway6": self.gateway6, "--range6": self.range6,
        }
        optional = "".join(f" {flag} {value}" for flag, value in given.items() if value is not None)
        off = {"--no-gateway": self.is_gateway, "--no-ip-masq": self.ip_masq, "--no-hairpin": self.hairpin}
        turned_off = "".join(f" {flag}" for flag, on in off.items() if not on)
        portmap = "--portmap" if self.portmap else "--no-portmap"
        return (
            f"nsgen cni --name {self.name} --bridge {self.bridge} --subnet {self.subnet}{optional}"
            f" --cni-version {self.cni_version} {portmap}{turned_off}"
        )


@dataclass(frozen=True)
class Family:
    """The addresses of one IP family: the subnet, its gateway (the bridge's address) and the range to give out."""

    subnet: IPNetwork
    gateway: IPAddress
    range_start: IPAddress
    range_end: IPAddress


@dataclass(frozen=True)
class Network:
    """Validated options with the values the templates need, computed once here."""

    options: CniOptions
    ipv4: Family
    ipv6: Family | None

    @property
    def cni_versions(self) -> tuple[str, ...]:
        """The conflist's `cniVersions`, or () when `cniVersion` alone says it all."""
        return CNI_VERSIONS.get(self.options.cni_version, ())

    @property
    def cni_version(self) -> str:
        """The conflist's `cniVersion`: the oldest of `cniVersions`, for runtimes that read only this."""
        return (self.cni_versions or (self.options.cni_version,))[0]

    @property
    def conflist_name(self) -> str:
        return f"{self.options.name}.conflist"

    @property
    def installed_conflist(self) -> str:
        """Its name in /etc/cni/net.d: `10-` sorts it before most others, and ctr reads only the first."""
        return f"10-{self.conflist_name}"


def _problem(field: str, message: str) -> Problem:
    return Problem(SOURCE, field, message)


def _is_host(address: IPAddress, subnet: IPNetwork) -> bool:
    """Whether `address` may be a host's: in `subnet`, not its network address nor (IPv4) its broadcast."""
    reserved = {subnet.network_address, subnet.broadcast_address if subnet.version == 4 else None}
    return address in subnet and address not in reserved


def _address(field: str, text: str, subnet: IPNetwork | None, problems: list[Problem]) -> IPAddress | None:
    """`text` as a host address of `subnet` (an IPv4 one while `subnet` is None), or None with a problem recorded."""
    version = subnet.version if subnet else 4
    try:
        address = ipaddress.ip_address(text)
        if address.version != version:
            raise ValueError
    except ValueError:
        problems.append(_problem(field, f"{text!r} is not an IPv{version} address"))
        return None
    if subnet is not None and not _is_host(address, subnet):
        problems.append(_problem(field, f"{address} is not a host address of the subnet {subnet}"))
        return None
    return address


def _subnet(field: str, text: str, version: int, problems: list[Problem]) -> IPNetwork | None:
    """`text` as an IPv4 (/1-/30) or IPv6 (/1-/126) CIDR with room for a gateway and a range, or None."""
    try:
        subnet = ipaddress.ip_network(text)
        if subnet.version != version:
            raise ValueError("wrong family")
    except ValueError as error:
        problems.append(_problem(field, f"{text!r} is not an IPv{version} CIDR ({error})"))
        return None
    longest = subnet.max_prefixlen - 2
    if not 1 <= subnet.prefixlen <= longest:
        problems.append(_problem(field, f"{subnet}: use a prefix of /1 to /{longest}"))
        return None
    return subnet


def _family(
    subnet_text: str, gateway_text: str | None, range_text: str | None, version: int, problems: list[Problem]
) -> Family | None:
    """One family's addresses; a gateway or range not given follows the subnet, as host-local's defaults do."""
    suffix = "" if version == 4 else "6"
    subnet = _subnet(f"--subnet{suffix}", subnet_text, version, problems)
    if subnet is None:
        return None
    first_host = subnet.network_address + 1
    last_host = subnet.broadcast_address - (1 if version == 4 else 0)
    gateway = first_host if gateway_text is None else _address(f"--gateway{suffix}", gateway_text, subnet, problems)
    if range_text is None:
        if gateway is None:
            return None
        # the hosts after the gateway, or before it when it is the last host
        start, end = (gateway + 1, last_host) if gateway < last_host else (first_host, gateway - 1)
        return Family(subnet, gateway, start, end)
    start_text, dash, end_text = range_text.partition("-")
    if not dash:
        problems.append(_problem(f"--range{suffix}", f"{range_text!r}: write the first and last address as A-B"))
        return None
    start = _address(f"--range{suffix}", start_text, subnet, problems)
    end = start and _address(f"--range{suffix}", end_text, subnet, problems)  # one problem per option
    if start is None or end is None or gateway is None:
        return None
    if start > end:
        problems.append(_problem(f"--range{suffix}", f"{range_text}: the first address is after the last"))
    elif start <= gateway <= end and gateway_text is None:
        problems.append(_problem(
            f"--range{suffix}", f"{range_text} holds the default gateway {gateway}: give --gateway{suffix} outside it"
        ))
    elif start <= gateway <= end:
        problems.append(_problem(f"--gateway{suffix}", f"{gateway} is inside the range {range_text}"))
    else:
        return Family(subnet, gateway, start, end)
    return None


def validate(options: CniOptions) -> Network:
    """The network of `options`, or a TopologyError listing every problem found (one per option)."""
    problems: list[Problem] = []
    if not _NAME.fullmatch(options.name):
        problems.append(_problem("--name", f"{options.name!r}: use 1-64 of [A-Za-z0-9_.-], starting alphanumeric"))
    if not _IFNAME.fullmatch(options.bridge):
        problems.append(_problem("--bridge", f"{options.bridge!r}: use 1-15 of [A-Za-z0-9_.-], starting alphanumeric"))
    if options.cni_version not in SUPPORTED_VERSIONS:
        problems.append(
            _problem("--cni-version", f"{options.cni_version!r}: supported are {', '.join(SUPPORTED_VERSIONS)}")
        )
    ipv4 = _family(options.subnet, options.gateway, options.range, 4, problems)
    ipv6 = None
    if options.subnet6 is not None:
        ipv6 = _family(options.subnet6, options.gateway6, options.range6, 6, problems)
    else:
        for flag, value in (("--gateway6", options.gateway6), ("--range6", options.range6)):
            if value is not None:
                problems.append(_problem(flag, f"{value}: needs --subnet6"))
    if problems:
        raise TopologyError(problems)
    return Network(options, ipv4, ipv6)


def stable_mac(network: str, bridge: str) -> str:
    """The MAC nsgen-bridge gives a network's bridge (labs' bridges derive theirs alike): set once, so the
    gateway's MAC never follows the ports that come and go."""
    return model.stable_mac(f"cni/{network}", bridge)


def version_result() -> str:
    """VERSION's answer, the same for every config: nsgen-bridge prints it as it is."""
    return json.dumps({"cniVersion": "1.0.0", "supportedVersions": list(SUPPORTED_VERSIONS)}, separators=(",", ":"))


def host_interface(container_id: str, ifname: str) -> str:
    """The host end of a container's veth, as nsgen-bridge names it: 15 characters, stable per container+ifname."""
    return "veth" + hashlib.sha256(f"{container_id}/{ifname}".encode()).hexdigest()[:11]


#: Rendered path -> template under templates/cni/ (the conflist is named after the network).
_TEMPLATES = {
    "dummy": "dummy.j2",
    "nsgen-bridge": "nsgen-bridge.j2",
    "install.sh": "install.sh.j2",
    "containerd/config.toml": "containerd/config.toml.j2",
    "containerd/run-container.sh": "containerd/run-container.sh.j2",
}


def render_cni(options: CniOptions) -> dict[str, str]:
    """Every file of the network, by relative path (EXECUTABLES are programs). Same options, same bytes."""
    network = validate(options)
    context = {
        "net": network, "options": options, "version": __version__, "command": options.command_line(),
        "supported_versions": SUPPORTED_VERSIONS, "version_result": version_result(),
    }
    files = {path: templates.template(f"cni/{name}").render(context, script=path) for path, name in _TEMPLATES.items()}
    files[network.conflist_name] = json.dumps(conflist(network), indent=2) + "\n"
    return dict(sorted(files.items()))


def conflist(network: Network) -> dict[str, Any]:
    """The network's configuration list: nsgen-bridge with its addresses and modes, then portmap if chained."""
    options = network.options
    bridge: dict[str, Any] = {
        "type": "nsgen-bridge", "bridge": options.bridge, "isGateway": options.is_gateway, "ipMasq": options.ip_masq,
        "hairpinMode": options.hairpin,
    }
    for suffix, family in (("", network.ipv4), ("6", network.ipv6)):
        if family is not None:
            bridge |= {
                f"subnet{suffix}": str(family.subnet),
                f"gateway{suffix}": str(family.gateway),
                f"rangeStart{suffix}": str(family.range_start),
                f"rangeEnd{suffix}": str(family.range_end),
            }
    bridge["capabilities"] = {"mac": True}  # runtimeConfig.mac, as podman's --mac-address can send it
    plugins = [bridge, *([{"type": "portmap", "capabilities": {"portMappings": True}}] if options.portmap else [])]
    versions = {"cniVersions": list(network.cni_versions)} if network.cni_versions else {}
    return {"cniVersion": network.cni_version, **versions, "name": options.name, "plugins": plugins}
