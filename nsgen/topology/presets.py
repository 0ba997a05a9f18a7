"""Built-in labs, each a function of a size returning a topology document (what `nsgen init` writes)."""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nsgen.problems import Problem, TopologyError

DEFAULT_PRESET = "pair"


@dataclass(frozen=True)
class Preset:
    """A named, documented topology builder; `default_count` is None when the lab has no size."""

    name: str
    summary: str
    build: Callable[[int], dict[str, Any]]
    default_count: int | None = None
    min_count: int = 1


def pair(_: int = 2) -> dict[str, Any]:
    """The guide's Part I: two namespaces joined by a veth pair, /32 addresses and a /16 route each."""
    return {
        "name": "pair",
        "description": "Two namespaces joined by a veth pair (the guide's Part I)",
        "namespaces": {
            f"ns-{i}": {
                "alias": f"ip{i}",
                "interfaces": {f"veth-{i}": {"addresses": [f"172.16.0.{i + 2}"]}},
                "routes": [{"to": "172.16.0.0/16", "dev": f"veth-{i}"}],
            }
            for i in range(2)
        },
        "links": [["ns-0:veth-0", "ns-1:veth-1"]],
    }


def bridge(count: int = 3) -> dict[str, Any]:
    """The guide's Part II: N namespaces on bridge v-net-0, which holds the gateway; addresses from its subnet."""
    return {
        "name": "bridge",
        "description": f"{count} namespaces on the bridge v-net-0, which is their gateway (the guide's Part II)",
        "bridges": {"v-net-0": {"addresses": ["172.16.0.1/16"], "subnet": "172.16.0.0/16"}},
        "namespaces": {
            f"ns-{i}": {"routes": [{"to": "default", "via": "172.16.0.1"}]} for i in range(count)
        },
        "links": [[f"ns-{i}:eth0", f"v-net-0:veth-{i}"] for i in range(count)],
    }


def mesh(count: int = 4) -> dict[str, Any]:
    """A full mesh: one veth pair, with a /30 of its own, per pair of namespaces."""
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    base = ipaddress.ip_network("10.100.0.0/30")
    return {
        "name": "mesh",
        "description": (
            f"Full mesh of {count} namespaces: n(n-1)/2 = {len(pairs)} veth pairs, where a bridge "
            f"would need {count}; links grow quadratically, which is why Part II moves to a bridge"
        ),
        "namespaces": {f"ns-{i}": None for i in range(count)},
        "links": [
            {
                "endpoints": [f"ns-{i}:to-{j}", f"ns-{j}:to-{i}"],
                "subnet": str(ipaddress.ip_network((int(base.network_address) + 4 * index, 30))),
            }
            for index, (i, j) in enumerate(pairs)
        ],
    }


def router(count: int = 2) -> dict[str, Any]:
    """Two bridge segments (IPv4 and IPv6) joined by a forwarding router namespace; N namespaces a side."""
    sides = {"left": 1, "right": 2}
    namespaces: dict[str, Any] = {
        "router": {
            "sysctls": {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1},
            "interfaces": {
                f"eth-{side}": {"addresses": [f"10.0.{n}.1/24", f"fd00:{n}::1/64"]} for side, n in sides.items()
            },
        }
    }
    links = [[f"router:eth-{side}", f"br-{side}:r-{side}"] for side in sides]
    for side, n in sides.items():
        for i in range(count):
            namespaces[f"{side}-{i}"] = {
                "routes": [{"to": "default", "via": f"10.0.{n}.1"}, {"to": "::/0", "via": f"fd00:{n}::1"}]
            }
            links.append([f"{side}-{i}:eth0", f"br-{side}:{side[0]}-{i}"])
    return {
        "name": "router",
        "description": f"{count} namespace{'' if count == 1 else 's'} on each of two bridges, IPv4 and IPv6,"
        " routed through a forwarding namespace",
        "bridges": {f"br-{side}": {"subnet": [f"10.0.{n}.0/24", f"fd00:{n}::/64"]} for side, n in sides.items()},
        "namespaces": namespaces,
        "links": links,
    }


def host(_: int = 1) -> dict[str, Any]:
    """One namespace joined to the root namespace by a veth, both ends addressed."""
    return {
        "name": "host",
        "description": "One namespace joined to the root namespace by a veth pair, both ends addressed",
        "host": {"interfaces": {"veth-h0": {"addresses": ["172.16.100.1/30"]}}},
        "namespaces": {"ns-0": {"interfaces": {"eth0": {"addresses": ["172.16.100.2/30"]}}}},
        "links": [["ns-0:eth0", "host:veth-h0"]],
    }


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        Preset("pair", "two namespaces joined by a veth pair: the guide's Part I", pair),
        Preset("bridge", "N namespaces on a bridge that is their gateway: the guide's Part II", bridge, 3, 1),
        Preset("mesh", "a full mesh of N namespaces, one veth pair and /30 per pair", mesh, 4, 2),
        Preset("router", "two bridged segments (IPv4+IPv6) joined by a router namespace", router, 2, 1),
        Preset("host", "one namespace joined to the root namespace by a veth pair", host),
    ]
}


def get(name: str) -> Preset:
    """The preset called `name`, or a TopologyError naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise TopologyError(
            [Problem("--preset", "", f"unknown preset '{name}' (known: {', '.join(PRESETS)})")]
        ) from None


def build(name: str, count: int | None = None) -> dict[str, Any]:
    """The document of preset `name` at size `count` (its default when None)."""
    preset = get(name)
    if count is None:
        return preset.build(preset.default_count or 1)
    if preset.default_count is None:
        raise TopologyError([Problem("--count", "", f"the preset '{name}' has no size to set")])
    if count < preset.min_count:
        raise TopologyError([Problem("--count", "", f"the preset '{name}' needs a count of at least {preset.min_count}")])
    return preset.build(count)
