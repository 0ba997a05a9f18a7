"""The guide's Parts III–V: a CNI network's options, validated, rendered into plugins, config and scripts."""

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from nsgen import __version__, rendering
from nsgen.problems import Problem, TopologyError

#: The spec versions nsgen-bridge speaks; results are shaped for the one the config asks for.
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
#: Rendered files that are programs; everything else is written 0644.
EXECUTABLES = frozenset({"dummy", "nsgen-bridge", "install.sh", "containerd/run-container.sh"})
#: Where problems with the options are reported from.
SOURCE = "nsgen cni"

# A CNI network name (also a file name) and a Linux interface name (at most 15 bytes).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")


@dataclass(frozen=True)
class CniOptions:
    """One CNI network. The defaults are the `cni` preset committed under generated/cni/."""

    name: str = "nsgen-net"
    bridge: str = "cni-nsgen0"
    subnet: str = "10.244.0.0/24"
    gateway: str = "10.244.0.1"
    range: str = "10.244.0.10-10.244.0.250"
    cni_version: str = "1.0.0"
    portmap: bool = False

    def command_line(self) -> str:
        """The `nsgen cni` command that renders exactly these options (named in every generated header)."""
        portmap = "--portmap" if self.portmap else "--no-portmap"
        return (
            f"nsgen cni --name {self.name} --bridge {self.bridge} --subnet {self.subnet} --gateway {self.gateway}"
            f" --range {self.range} --cni-version {self.cni_version} {portmap}"
        )


@dataclass(frozen=True)
class Network:
    """Validated options with the values the templates need, computed once here."""

    options: CniOptions
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    range_start: ipaddress.IPv4Address
    range_end: ipaddress.IPv4Address

    @property
    def conflist_name(self) -> str:
        return f"{self.options.name}.conflist"

    @property
    def installed_conflist(self) -> str:
        """Its name in /etc/cni/net.d: `10-` sorts it before most others, and ctr reads only the first."""
        return f"10-{self.conflist_name}"


def _problem(field: str, message: str) -> Problem:
    return Problem(SOURCE, field, message)


def _address(
    field: str, text: str, subnet: ipaddress.IPv4Network | None, problems: list[Problem]
) -> ipaddress.IPv4Address | None:
    """`text` as an IPv4 address that is a usable host of `subnet`, or None (with a problem recorded)."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        problems.append(_problem(field, f"{text!r} is not an IPv4 address"))
        return None
    if subnet is not None and (address not in subnet or address in (subnet.network_address, subnet.broadcast_address)):
        problems.append(_problem(field, f"{address} is not a host address of the subnet {subnet}"))
        return None
    return address


def validate(options: CniOptions) -> Network:
    """The network of `options`, or a TopologyError listing every problem found."""
    problems: list[Problem] = []
    if not _NAME.fullmatch(options.name):
        problems.append(_problem("--name", f"{options.name!r}: use 1-64 of [A-Za-z0-9_.-], starting alphanumeric"))
    if not _IFNAME.fullmatch(options.bridge):
        problems.append(_problem("--bridge", f"{options.bridge!r}: use 1-15 of [A-Za-z0-9_.-], starting alphanumeric"))
    if options.cni_version not in SUPPORTED_VERSIONS:
        problems.append(
            _problem("--cni-version", f"{options.cni_version!r}: supported are {', '.join(SUPPORTED_VERSIONS)}")
        )
    subnet = None
    try:
        subnet = ipaddress.IPv4Network(options.subnet)
        if subnet.prefixlen > 30:
            problems.append(_problem("--subnet", f"{subnet} is too small: use a prefix of /30 or shorter"))
            subnet = None
    except ValueError as error:
        problems.append(_problem("--subnet", f"{options.subnet!r} is not an IPv4 CIDR ({error})"))
    gateway = _address("--gateway", options.gateway, subnet, problems)
    start_text, dash, end_text = options.range.partition("-")
    start = end = None
    if not dash:
        problems.append(_problem("--range", f"{options.range!r}: write the first and last address as A-B"))
    else:
        start = _address("--range", start_text, subnet, problems)
        end = _address("--range", end_text, subnet, problems)
    if start is not None and end is not None:
        if start > end:
            problems.append(_problem("--range", f"{options.range}: the first address is after the last"))
        elif gateway is not None and start <= gateway <= end:
            problems.append(_problem("--gateway", f"{gateway} is inside the range {options.range}"))
    if problems:
        raise TopologyError(problems)
    return Network(options, subnet, gateway, start, end)


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
    context = {"net": network, "options": options, "version": __version__, "command": options.command_line()}
    files = {path: rendering.template(f"cni/{name}").render(context, script=path) for path, name in _TEMPLATES.items()}
    files[network.conflist_name] = rendering.template("cni/network.conflist.j2").render(context)
    return dict(sorted(files.items()))
