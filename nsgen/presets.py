"""Built-in labs, each a function returning a topology document (what `nsgen init` writes as YAML)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nsgen.problems import Problem, TopologyError

DEFAULT_PRESET = "pair"


@dataclass(frozen=True)
class Preset:
    """A named, documented topology builder."""

    name: str
    summary: str
    build: Callable[[], dict[str, Any]]


def pair() -> dict[str, Any]:
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


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        Preset("pair", "two namespaces joined by a veth pair: the guide's Part I", pair),
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
