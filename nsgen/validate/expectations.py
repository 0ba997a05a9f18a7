"""The expectations phase: the topology's `expect:` list, each a ping, a TCP connection or a
command, from (or in) a known namespace."""

import ipaddress
import re
import warnings
from typing import Any

from nsgen.topology.model import Expectation, Expected, IPInterface, RunExpectation, TcpExpectation
from nsgen.validate.context import Context, Path
from nsgen.validate.hints import known

#: Which keys each kind of check takes: the key that names it first, then the others it requires, then the optional.
_KINDS = {
    "to": (("from",), ("reachable",)),
    "tcp": (("from",), ("open",)),
    "run": (("in", "output"), ()),
}


def build(ctx: Context) -> None:
    result: list[Expected] = []
    for index, spec in enumerate(ctx.doc.get("expect") or []):
        path: Path = ["expect", index]
        kinds = [key for key in _KINDS if key in spec]
        if len(kinds) != 1:
            ctx.problem(path, "give one of to (a ping), tcp (a connection) or run (a command)")
            continue
        required, optional = _KINDS[kinds[0]]
        missing = [key for key in required if key not in spec]
        extra = sorted(set(spec) - {kinds[0], *required, *optional})
        if missing or extra:
            said = f"needs {', '.join(missing)}" if missing else f"does not take {', '.join(extra)}"
            ctx.problem(path, f"a check with {kinds[0]} {said}")
            continue
        source = spec.get("from", spec.get("in"))
        if source not in ctx.namespaces:
            where = "from" if "from" in spec else "in"
            ctx.problem([*path, where], f"unknown namespace '{source}'{known(source, ctx.namespaces)}")
            continue
        result += _checks(ctx, path, spec, source)
    ctx.lab_expect = tuple(result)


def _checks(ctx: Context, path: Path, spec: dict[str, Any], source: str) -> list[Expected]:
    if "run" in spec:
        problem = _pattern_problem(spec["output"])
        if problem:
            ctx.problem([*path, "output"], f"'{spec['output']}' {problem}")
            return []
        return [RunExpectation(source, spec["run"], spec["output"])]
    if "tcp" in spec:
        host, _, port = spec["tcp"].rpartition(":")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            ctx.problem([*path, "tcp"], f"invalid address '{host}' (expected ADDRESS:PORT, [IPv6]:PORT)")
            return []
        if not 1 <= int(port) <= 65535:
            ctx.problem([*path, "tcp"], f"port {port} is not 1-65535")
            return []
        return [TcpExpectation(source, address, int(port), spec.get("open", True))]
    reachable = spec.get("reachable", True)
    if spec["to"] in ctx.namespaces:  # every address it has, of the IP versions the source has
        families = {a.version for a in _addresses(ctx, source)}
        addresses = [a.ip for a in _addresses(ctx, spec["to"]) if a.version in families]
        return [Expectation(source, address, reachable) for address in addresses]
    try:
        return [Expectation(source, ipaddress.ip_address(spec["to"]), reachable)]
    except ValueError:
        ctx.problem([*path, "to"], f"'{spec['to']}' is neither an address nor a namespace{known(spec['to'], ctx.namespaces)}")
        return []


def _addresses(ctx: Context, name: str) -> list[IPInterface]:
    """The addresses of the namespace `name`, as the namespaces phase completed them."""
    return [a for ns in ctx.lab_namespaces if ns.name == name for iface in ns.interfaces for a in iface.addresses]


#: What Python's regular expressions take and bash's `=~` (POSIX extended) does not.
_PYTHON_ONLY = re.compile(r"\\[dDwWsSbB]|\(\?|[*+?}]\?")
#: A POSIX character class inside a bracket expression (`[[:space:]]`), and the classes there are.
_CLASS = re.compile(r"\[:([a-z]*):\]")
_CLASSES = frozenset("alnum alpha blank cntrl digit graph lower print punct space upper xdigit".split())


def _pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is no extended regular expression bash's `=~` matches as written, or None (Python
    compiles it, its POSIX classes standing for a letter)."""
    if _PYTHON_ONLY.search(pattern):
        return "is Python's, not bash's =~ (POSIX extended): [0-9] for \\d, [[:space:]] for \\s, no (?...), no lazy *?"
    unknown = sorted(set(_CLASS.findall(pattern)) - _CLASSES)
    if unknown:
        return f"names no character class [:{unknown[0]}:] (known: {', '.join(sorted(_CLASSES))})"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a nested set Python only warns of
        try:
            re.compile(_CLASS.sub("a", pattern))
        except (re.error, FutureWarning) as error:
            return f"is not a regular expression ({error})"
    return None
