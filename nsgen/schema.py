"""The JSON Schema of the topology format: published by `nsgen schema`, enforced by validation."""

from typing import Any

SCHEMA_ID = "https://nsgen.dev/schema/topology-v1.json"

LAB_NAME = r"^[a-z0-9][a-z0-9-]*$"
NETNS_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
IFNAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ALIAS = r"^[A-Za-z_][A-Za-z0-9_]*$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

#: Longest interface name the kernel takes (IFNAMSIZ 16 minus the NUL byte).
IFNAME_MAX = 15
#: Longest namespace name: it is a file name under /run/netns (NAME_MAX).
NETNS_MAX = 255


def _string(title: str, pattern: str, max_length: int, description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "pattern": pattern,
        "minLength": 1,
        "maxLength": max_length,
        "description": description,
    }


_IFNAME = _string(
    "interface name",
    IFNAME,
    IFNAME_MAX,
    "1-15 characters (kernel IFNAMSIZ): letters, digits, '_', '.', '-', not starting with '.', '_' or '-'",
)
_NETNS = _string(
    "namespace name",
    NETNS_NAME,
    NETNS_MAX,
    "letters, digits, '_', '.', '-', starting with a letter or digit (a file name under /run/netns)",
)
_ADDRESS = {
    "type": "string",
    "title": "address",
    "description": "an IPv4 or IPv6 address, bare (/32, /128, as `ip addr add` takes it) or with /prefix",
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "nsgen topology",
    "description": "Network namespaces, their interfaces, addresses and routes, and the veth links between them.",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespaces"],
    "properties": {
        "name": _string("lab name", LAB_NAME, 63, "lowercase letters, digits and '-', starting with a letter or digit"),
        "description": {
            "type": "string",
            "title": "description",
            "maxLength": 200,
            "pattern": PRINTABLE,
            "description": "one line of text, no control characters",
        },
        "prefix": {
            "type": "string",
            "title": "prefix",
            "maxLength": IFNAME_MAX - 1,
            "pattern": r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$",
            "description": "prepended to every namespace name and every root-namespace device name",
        },
        "namespaces": {
            "type": "object",
            "title": "namespaces",
            "minProperties": 1,
            "propertyNames": _NETNS,
            "additionalProperties": {
                "type": ["object", "null"],
                "title": "namespace",
                "additionalProperties": False,
                "properties": {
                    "alias": _string(
                        "alias",
                        ALIAS,
                        64,
                        "a shell function name: letters, digits and '_', not starting with a digit",
                    ),
                    "interfaces": {
                        "type": "object",
                        "title": "interfaces",
                        "propertyNames": _IFNAME,
                        "additionalProperties": {
                            "type": ["object", "null"],
                            "title": "interface",
                            "additionalProperties": False,
                            "properties": {
                                "addresses": {"type": "array", "title": "addresses", "items": _ADDRESS},
                            },
                        },
                    },
                    "routes": {
                        "type": "array",
                        "title": "routes",
                        "items": {
                            "type": "object",
                            "title": "route",
                            "additionalProperties": False,
                            "required": ["to"],
                            "properties": {
                                "to": {
                                    "type": "string",
                                    "title": "destination",
                                    "description": "a CIDR such as 172.16.0.0/16, or 'default'",
                                },
                                "dev": _IFNAME,
                                "via": {**_ADDRESS, "title": "gateway"},
                            },
                        },
                    },
                },
            },
        },
        "links": {
            "type": "array",
            "title": "links",
            "description": "veth pairs, each written [node:interface, node:interface]",
            "items": {
                "type": "array",
                "title": "link",
                "minItems": 2,
                "maxItems": 2,
                "items": {
                    "type": "string",
                    "title": "link end",
                    "pattern": rf"{NETNS_NAME[:-1]}:{IFNAME[1:]}",
                    "description": "written node:interface, e.g. ns-0:veth-0",
                },
            },
        },
    },
}
