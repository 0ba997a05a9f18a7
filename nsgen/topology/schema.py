"""The JSON Schema of the topology format: published by `nsgen schema`, enforced by validation."""

from typing import Any

SCHEMA_ID = "https://nsgen.dev/schema/topology-v1.json"

LAB_NAME = r"^[a-z0-9][a-z0-9-]*$"
NETNS_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
IFNAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ALIAS = r"^[A-Za-z_][A-Za-z0-9_]*$"
PRINTABLE = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$"  # no control characters, no line separators

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
_MAC = _string(
    "mac",
    r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$",
    17,
    "six hex pairs separated by ':', e.g. 02:00:00:00:00:01 (a unicast address)",
)
_NETNS = _string(
    "namespace name",
    NETNS_NAME,
    NETNS_MAX,
    "letters, digits, '_', '.', '-', starting with a letter or digit (a file name under /run/netns)",
)
#: Digits, hex letters, ':' and '.', with an optional /prefix: no IPv6 zone (`%eth0`), no spaces.
ADDRESS_TEXT = r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$"
CIDR_TEXT = r"^[0-9A-Fa-f:.]+/[0-9]{1,3}$"
_CIDR = {"type": "string", "title": "subnet", "pattern": CIDR_TEXT, "description": "a CIDR such as 10.0.0.0/24"}
_SUBNETS = {
    "type": ["string", "array"],
    "title": "subnet",
    "pattern": CIDR_TEXT,
    "items": _CIDR,
    "maxItems": 2,
    "description": "a CIDR (or one per IP version) whose addresses go, in declaration order, to the segment's "
    "interfaces that declare none",
}
_MTU = {"type": "integer", "title": "mtu", "minimum": 68, "maximum": 65535}
_ADDRESS = {
    "type": "string",
    "title": "address",
    "pattern": ADDRESS_TEXT,
    "description": "an IPv4 or IPv6 address, bare (/32, /128, as `ip addr add` takes it) or with /prefix",
}

_HOST_NAME = _string(
    "host name",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    63,
    "letters, digits, '_', '.', '-', starting with a letter or digit (also its directory and Ansible inventory name)",
)
_VNI = {"type": "integer", "title": "vni", "minimum": 1, "maximum": 16777215}
#: Link conditions, as tc spells them.
RATE_TEXT = r"^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit)$"
TIME_TEXT = r"^[0-9]+(\.[0-9]+)?(us|ms|s)$"
PERCENT_TEXT = r"^[0-9]+(\.[0-9]+)?%$"
CONDITION_KEYS = ("rate", "delay", "jitter", "loss")
_CONDITIONS = {
    "rate": {"type": "string", "title": "rate", "pattern": RATE_TEXT, "description": "a rate, e.g. 10mbit (kbit, mbit, gbit)"},
    "delay": {"type": "string", "title": "delay", "pattern": TIME_TEXT, "description": "a time, e.g. 20ms (us, ms, s)"},
    "jitter": {"type": "string", "title": "jitter", "pattern": TIME_TEXT, "description": "a time, e.g. 2ms (us, ms, s)"},
    "loss": {"type": "string", "title": "loss", "pattern": PERCENT_TEXT, "description": "a percentage, e.g. 0.5%"},
}

#: A service's name: also its files' names under /run/nsgen (its log, PID and exit status).
SERVICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_COMMAND = {
    "type": "string",
    "title": "command",
    "minLength": 1,
    "maxLength": 4096,
    "pattern": PRINTABLE,
    "description": "a shell command line, run under `bash -c` inside the namespace, e.g. python3 -m http.server 80",
}
_SERVICE = {
    "type": ["string", "object"],
    "title": "service",
    "description": "a command on one line (named by its first word), or {name, command, ready: {tcp: PORT} | {file: PATH}}",
    **{key: value for key, value in _COMMAND.items() if key not in ("type", "title", "description")},
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "name": _string("service name", SERVICE_NAME, 64, "letters, digits, '_', '.', '-', starting with a letter or digit"),
        "command": _COMMAND,
        "ready": {
            "type": "object",
            "title": "ready",
            "description": "what setup waits for: {tcp: PORT} (a listening port) or {file: PATH}, with timeout: SECONDS (10)",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "tcp": {"type": "integer", "title": "port", "minimum": 1, "maximum": 65535},
                "file": {
                    "type": "string",
                    "title": "file",
                    "pattern": r"^/[^\x00-\x1f\x7f]*$",
                    "maxLength": 4096,
                    "description": "an absolute path, no control characters",
                },
                "timeout": {"type": "integer", "title": "timeout", "minimum": 1, "maximum": 600},
            },
        },
    },
}

_INTERFACES = {
    "type": "object",
    "title": "interfaces",
    "propertyNames": _IFNAME,
    "additionalProperties": {
        "type": ["object", "null"],
        "title": "interface",
        "additionalProperties": False,
        "properties": {
            "addresses": {"type": "array", "title": "addresses", "items": _ADDRESS},
            "mtu": _MTU,
            "mac": _MAC,
        },
    },
}
_LINK_END = {
    "type": "string",
    "title": "link end",
    "pattern": rf"{NETNS_NAME[:-1]}:{IFNAME[1:]}",
    "description": "written node:interface, e.g. ns-0:veth-0 (node: a namespace, a bridge, host, or macvlan)",
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "nsgen topology",
    "description": "Network namespaces, their interfaces, addresses and routes, and the links between them.",
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
                    "interfaces": _INTERFACES,
                    "sysctls": {
                        "type": "object",
                        "title": "sysctls",
                        "description": "network sysctls set inside the namespace, e.g. net.ipv4.ip_forward: 1",
                        "propertyNames": _string(
                            "sysctl", r"^net(\.[A-Za-z0-9_-]+)+$", 128, "a network sysctl such as net.ipv4.ip_forward"
                        ),
                        "additionalProperties": {
                            "type": ["integer", "string"],
                            "title": "sysctl value",
                            "pattern": r"^[A-Za-z0-9_.:-]*$",
                            "maxLength": 64,
                            "description": "a number, or letters, digits, '_', '.', ':', '-'",
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
                                    "pattern": rf"^default$|{CIDR_TEXT}",
                                    "description": "a CIDR such as 172.16.0.0/16, or 'default'",
                                },
                                "dev": _IFNAME,
                                "via": {**_ADDRESS, "title": "gateway"},
                            },
                        },
                    },
                    "host": {**_HOST_NAME, "description": "the machine of `hosts:` it is placed on"},
                    "run": {
                        "type": "array",
                        "title": "services",
                        "description": "processes setup starts in the namespace once its network is up, and teardown stops",
                        "items": _SERVICE,
                    },
                },
            },
        },
        "bridges": {
            "type": "object",
            "title": "bridges",
            "description": "Linux bridges in the root namespace; a link end BRIDGE:ifname is a port of it",
            "propertyNames": {**_IFNAME, "title": "bridge name"},
            "additionalProperties": {
                "type": ["object", "null"],
                "title": "bridge",
                "additionalProperties": False,
                "properties": {
                    "addresses": {"type": "array", "title": "addresses", "items": _ADDRESS},
                    "subnet": _SUBNETS,
                    "mtu": _MTU,
                    "mac": _MAC,
                    "hosts": {
                        "type": "array",
                        "title": "bridge hosts",
                        "description": "the machines it spans: one bridge on each, joined by VXLAN into one L2 segment",
                        "items": _HOST_NAME,
                        "minItems": 1,
                    },
                    "vni": _VNI,
                },
            },
        },
        "host": {
            "type": "object",
            "title": "host",
            "description": "the root namespace's plain veth ends (link ends host:ifname) and their addresses",
            "additionalProperties": False,
            "properties": {"interfaces": _INTERFACES},
        },
        "links": {
            "type": "array",
            "title": "links",
            "description": "veth pairs (or a macvlan: [NS:IF, macvlan:PARENT]): [end, end], or {endpoints: [end, end],"
            " subnet: CIDR} with conditions on what"
            " both ends send (rate: 10mbit, delay: 20ms, jitter: 2ms, loss: 0.5%) or, per sending end, under"
            " from: {NODE: {rate: 10mbit}}",
            "items": {
                "type": ["array", "object"],
                "title": "link",
                "minItems": 2,
                "maxItems": 2,
                "items": _LINK_END,
                "additionalProperties": False,
                "required": ["endpoints"],
                "properties": {
                    "endpoints": {"type": "array", "title": "link", "minItems": 2, "maxItems": 2, "items": _LINK_END},
                    "subnet": _SUBNETS,
                    "vni": _VNI,
                    **_CONDITIONS,
                    "from": {
                        "type": "object",
                        "title": "from",
                        "description": "conditions on what one end sends, by its node: {ns-0: {rate: 10mbit}}",
                        "additionalProperties": {
                            "type": "object",
                            "title": "conditions",
                            "additionalProperties": False,
                            "minProperties": 1,
                            "properties": _CONDITIONS,
                        },
                    },
                },
            },
        },
        "expect": {
            "type": "array",
            "title": "expect",
            "description": "checks verify.sh runs after its own: a ping {from: ns-0, to: 10.0.1.2 | NAMESPACE,"
            " reachable: false}, a TCP connection {from: ns-0, tcp: '10.0.1.2:80', open: true}, or a command"
            " {in: ns-0, run: COMMAND, output: REGEX}",
            "items": {
                "type": "object",
                "title": "expectation",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "from": {**_NETNS, "title": "namespace"},
                    "to": {
                        "type": "string",
                        "title": "address",
                        "pattern": rf"{ADDRESS_TEXT}|{NETNS_NAME}",
                        "maxLength": NETNS_MAX,
                        "description": "an address, or a namespace (every address it has of an IP version `from` has)",
                    },
                    "reachable": {"type": "boolean", "title": "reachable", "description": "the ping is answered (true)"},
                    "tcp": {
                        "type": "string",
                        "title": "tcp",
                        "pattern": r"^(\[[0-9A-Fa-f:.]+\]|[0-9.]+):[0-9]{1,5}$",
                        "description": "ADDRESS:PORT ([IPv6]:PORT), connected to with bash's /dev/tcp",
                    },
                    "open": {"type": "boolean", "title": "open", "description": "the connection opens (true)"},
                    "in": {**_NETNS, "title": "namespace"},
                    "run": _COMMAND,
                    "output": {
                        "type": "string",
                        "title": "output",
                        "pattern": PRINTABLE,
                        "maxLength": 1024,
                        "description": "an extended regular expression (bash's =~) the command's output must match",
                    },
                },
            },
        },
        "nat": {
            "type": "array",
            "title": "nat",
            "description": "lab subnets whose traffic to anything outside the lab is masqueraded as it leaves the machine"
            " (IPv4), e.g. [{from: 10.0.1.0/24}]",
            "items": {
                "type": "object",
                "title": "nat",
                "additionalProperties": False,
                "required": ["from"],
                "properties": {"from": {**_CIDR, "title": "from"}},
            },
        },
        "forward": {
            "type": "array",
            "title": "forward",
            "description": "ports of the machine forwarded into the lab, e.g. [{port: 8080, to: 'web:80', proto: tcp}]",
            "items": {
                "type": "object",
                "title": "forwarded port",
                "additionalProperties": False,
                "required": ["port", "to"],
                "properties": {
                    "port": {"type": "integer", "title": "port", "minimum": 1, "maximum": 65535},
                    "to": {
                        "type": "string",
                        "title": "to",
                        "pattern": rf"{NETNS_NAME[:-1]}:[0-9]{{1,5}}$",
                        "description": "NAMESPACE:PORT, e.g. web:80 (the namespace's first IPv4 address)",
                    },
                    "proto": {"type": "string", "title": "proto", "enum": ["tcp", "udp"]},
                },
            },
        },
        "hosts": {
            "type": "object",
            "title": "hosts",
            "description": "the machines of a multi-host lab; a namespace's `host:` places it on one",
            "minProperties": 1,
            "propertyNames": _HOST_NAME,
            "additionalProperties": {
                "type": "object",
                "title": "host",
                "additionalProperties": False,
                "required": ["address"],
                "properties": {
                    "address": {
                        **_ADDRESS,
                        "title": "underlay address",
                        "description": "the machine's underlay address (the VXLAN endpoint; Ansible's ansible_host "
                        "by default), with its /prefix if the underlay subnet should be checked against the lab's",
                    },
                    "mtu": {**_MTU, "description": "the underlay's MTU (default 1500)"},
                    "namespaces": {
                        "type": "array",
                        "title": "host namespaces",
                        "description": "namespaces placed on this machine (or give each namespace a `host:`)",
                        "items": {**_NETNS, "title": "namespace"},
                    },
                    "ansible": {
                        "type": "object",
                        "title": "ansible",
                        "description": "inventory variables of this machine, e.g. ansible_user, ansible_port",
                        "propertyNames": _string(
                            "ansible variable", r"^ansible_[a-z0-9_]+$", 64, "an Ansible connection variable"
                        ),
                        "additionalProperties": {
                            "type": ["string", "integer", "boolean"],
                            "title": "ansible value",
                            "pattern": PRINTABLE,
                        },
                    },
                },
            },
        },
        "vxlan": {
            "type": "object",
            "title": "vxlan",
            "description": "VNIs of cross-host links and spanning bridges count up from vni_base; port is the UDP port",
            "additionalProperties": False,
            "properties": {"vni_base": _VNI, "port": {"type": "integer", "title": "port", "minimum": 1, "maximum": 65535}},
        },
    },
}
