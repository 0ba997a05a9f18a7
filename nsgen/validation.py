"""Turning a parsed topology document into a complete `Lab`, or every problem with it.

Two passes: the JSON Schema (structure, types, name syntax), then the rules a schema cannot say
(references, duplicates, addresses, kernel limits after the prefix). Each problem names the file,
the field path and what is wrong, with a "did you mean" where a close name exists.
"""

import difflib
import ipaddress
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from nsgen.model import Endpoint, Interface, IPInterface, Lab, Namespace, Route, VethLink
from nsgen.problems import Problem, TopologyError, field_path
from nsgen.schema import IFNAME_MAX, NETNS_MAX, SCHEMA

_VALIDATOR = Draft202012Validator(SCHEMA)

#: Names an alias must not take: shell keywords and builtins, and what the scripts call.
RESERVED_ALIASES = frozenset(
    """if then else elif fi case esac for select while until do done in function time coproc
    alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown
    echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout
    mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend test
    times trap true type typeset ulimit umask unalias unset wait
    bash env ip ping sudo displayLinks displayAddr displayRoutes""".split()
)


def _known(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'? known: a, b)`: the close name if there is one, and every known name."""
    names = list(choices)
    close = next(iter(difflib.get_close_matches(word, names, n=1, cutoff=0.8)), None)
    hint = f"did you mean '{close}'? " if close else ""
    return f" ({hint}known: {', '.join(names)})" if names else " (none is declared)"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return f"{kinds.get(type(value), type(value).__name__)} {value!r}"


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number", "null": "nothing"}


def _schema_problems(source: str, error: ValidationError) -> list[Problem]:
    path: list[Any] = list(error.absolute_path)
    schema, value, keyword = error.schema, error.instance, error.validator
    if "propertyNames" in error.absolute_schema_path:
        path.append(value)  # the offending key itself: report it where it stands
    if keyword == "additionalProperties":
        allowed = schema.get("properties", {})
        return [
            Problem(source, field_path([*path, key]), f"unknown key{_known(str(key), allowed)}")
            for key in value
            if key not in allowed
        ]
    if keyword == "required":
        return [Problem(source, field_path(path), f"missing required key '{key}'") for key in error.validator_value if key not in value]
    if keyword == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in wanted)
        hint = " (YAML reads yes/no/on/off as booleans: quote the value)" if isinstance(value, bool) else ""
        return [Problem(source, field_path(path), f"expected {expected}, got {_describe(value)}{hint}")]
    title = schema.get("title", "value")
    count = len(value) if isinstance(value, (list, dict, str)) else 0
    messages = {
        "pattern": f"invalid {title} {value!r}: {schema.get('description', '')}",
        "maxLength": f"{title} {value!r} is longer than {error.validator_value} characters"
        + (" (kernel IFNAMSIZ)" if error.validator_value == IFNAME_MAX else ""),
        "minLength": f"{title} must not be empty",
        "minItems": f"a {title} has {error.validator_value} entries, got {count}",
        "maxItems": f"a {title} has {error.validator_value} entries, got {count}",
        "minProperties": f"{title} must not be empty",
    }
    return [Problem(source, field_path(path), messages.get(keyword, error.message))]


def check_schema(document: Any, source: str) -> None:
    """Raise TopologyError listing every structural problem of `document`."""
    if not isinstance(document, dict):
        what = "the file is empty" if document is None else f"the top level is {_describe(document)}"
        raise TopologyError([Problem(source, "", f"{what}; expected a mapping with name, namespaces and links")])
    problems = [p for e in _VALIDATOR.iter_errors(document) for p in _schema_problems(source, e)]
    if problems:
        raise TopologyError(sorted(set(problems), key=lambda p: (p.field, p.message)))


class _LabBuilder:
    """The checks a schema cannot express, collecting problems while completing the model."""

    def __init__(self, document: dict[str, Any], source: str):
        self.doc = document
        self.source = source
        self.prefix = document.get("prefix", "")
        self.problems: list[Problem] = []
        self.address_owner: dict[Any, str] = {}

    def problem(self, path: list[Any], message: str) -> None:
        self.problems.append(Problem(self.source, field_path(path), message))

    def build(self) -> Lab:
        namespaces = self.doc["namespaces"]
        self._check_prefix(namespaces)
        links, linked = self._links(namespaces)
        # A broken link leaves its interfaces unlinked: say so only when the links themselves are sound.
        self.check_unlinked = not self.problems
        built = tuple(self._namespace(index, name, spec or {}, linked) for index, (name, spec) in enumerate(namespaces.items()))
        self._check_aliases(namespaces, built)
        if self.problems:
            raise TopologyError(self.problems)
        return Lab(
            name=self.doc["name"],
            description=self.doc.get("description", ""),
            prefix=self.prefix,
            namespaces=built,
            links=tuple(links),
        )

    def _check_prefix(self, namespaces: dict[str, Any]) -> None:
        for name in namespaces:
            full = self.prefix + name
            if len(full) > NETNS_MAX:
                self.problem(["namespaces", name], f"namespace name with prefix is longer than {NETNS_MAX} characters")

    def _namespace(self, index: int, name: str, spec: dict[str, Any], linked: list[tuple[str, str]]) -> Namespace:
        path: list[Any] = ["namespaces", name]
        declared = spec.get("interfaces") or {}
        interfaces = []
        for ifname, ifspec in declared.items():
            if self.check_unlinked and (name, ifname) not in linked:
                self.problem([*path, "interfaces", ifname], "not on any link (add it to links, or remove it)")
            interfaces.append(Interface(ifname, self._addresses([*path, "interfaces", ifname], name, ifname, ifspec or {})))
        for node, ifname in linked:
            if node == name and ifname not in declared:
                interfaces.append(Interface(ifname))
        ifnames = [iface.name for iface in interfaces]
        routes = tuple(
            route
            for route_index, route_spec in enumerate(spec.get("routes") or [])
            if (route := self._route([*path, "routes", route_index], route_spec, ifnames)) is not None
        )
        self._check_duplicate_routes(path, routes)
        return Namespace(
            name=name,
            netns=self.prefix + name,
            alias=spec.get("alias") or f"ip{index}",
            interfaces=tuple(interfaces),
            routes=routes,
        )

    def _addresses(self, path: list[Any], node: str, ifname: str, spec: dict[str, Any]) -> tuple[IPInterface, ...]:
        result = []
        for index, text in enumerate(spec.get("addresses") or []):
            try:
                address = ipaddress.ip_interface(text)
            except ValueError:
                self.problem([*path, "addresses", index], f"invalid address '{text}' (expected e.g. 172.16.0.2 or 10.0.0.1/24)")
                continue
            owner = self.address_owner.get(address.ip)
            if owner:
                self.problem([*path, "addresses", index], f"address {address.ip} is already given to {owner}")
                continue
            self.address_owner[address.ip] = f"{node}:{ifname}"
            result.append(address)
        return tuple(result)

    def _route(self, path: list[Any], spec: dict[str, Any], ifnames: list[str]) -> Route | None:
        ok = True
        to_text = spec["to"]
        dev = spec.get("dev")
        via = None
        if dev is not None and dev not in ifnames:
            self.problem([*path, "dev"], f"unknown device '{dev}' in this namespace{_known(dev, ifnames)}")
            ok = False
        if "via" in spec:
            try:
                via = ipaddress.ip_address(spec["via"])
            except ValueError:
                self.problem([*path, "via"], f"invalid gateway address '{spec['via']}'")
                ok = False
        if dev is None and "via" not in spec:
            self.problem(path, "a route needs 'dev', 'via' or both")
            ok = False
        if to_text == "default":
            to = ipaddress.ip_network("::/0" if via is not None and via.version == 6 else "0.0.0.0/0")
        else:
            try:
                to = ipaddress.ip_network(to_text, strict=True)
            except ValueError:
                try:
                    hint = f" (did you mean '{ipaddress.ip_network(to_text, strict=False)}'?)"
                    problem = f"'{to_text}' has host bits set{hint}"
                except ValueError:
                    problem = f"invalid destination '{to_text}' (expected a CIDR such as 172.16.0.0/16, or 'default')"
                self.problem([*path, "to"], problem)
                return None
        if via is not None and via.version != to.version:
            self.problem([*path, "via"], f"gateway {via} is IPv{via.version} but the destination is IPv{to.version}")
            ok = False
        return Route(to=to, dev=dev, via=via) if ok else None

    def _check_duplicate_routes(self, path: list[Any], routes: tuple[Route, ...]) -> None:
        seen = set()
        for route in routes:
            if route.to in seen:
                self.problem([*path, "routes"], f"two routes to {route.to}")
            seen.add(route.to)

    def _links(self, namespaces: dict[str, Any]) -> tuple[list[VethLink], list[tuple[str, str]]]:
        """The valid links, and every (namespace, interface) a link names, valid or not."""
        used: dict[tuple[str, str], int] = {}
        links = []
        for index, ends in enumerate(self.doc.get("links") or []):
            endpoints = []
            for side, text in enumerate(ends):
                node, ifname = text.split(":")
                path = ["links", index, side]
                if node not in namespaces:
                    self.problem(path, f"unknown namespace '{node}'{_known(node, namespaces)}")
                elif (node, ifname) in used:
                    self.problem(path, f"interface {node}:{ifname} is already on links[{used[(node, ifname)]}]")
                else:
                    used[(node, ifname)] = index
                    if len(ifname) > IFNAME_MAX:
                        self.problem(path, f"interface name '{ifname}' is longer than {IFNAME_MAX} characters (kernel IFNAMSIZ)")
                    endpoints.append(Endpoint(node, ifname))
            if len(endpoints) == 2:
                links.append(VethLink(*endpoints))
        return links, list(used)

    def _check_aliases(self, namespaces: dict[str, Any], built: tuple[Namespace, ...]) -> None:
        owners: dict[str, str] = {}
        for ns in built:
            path = ["namespaces", ns.name, "alias"]
            if ns.alias in RESERVED_ALIASES:
                self.problem(path, f"alias '{ns.alias}' would hide the shell's or the scripts' own '{ns.alias}'")
            elif ns.alias in owners:
                self.problem(path, f"alias '{ns.alias}' is already the alias of namespace '{owners[ns.alias]}'")
            owners.setdefault(ns.alias, ns.name)


def build_lab(document: Any, source: str, prefix: str | None = None) -> Lab:
    """Validate `document` (parsed YAML) and return the complete lab; `prefix` overrides the file's."""
    if prefix is not None and isinstance(document, dict):
        document = {**document, "prefix": prefix}
    check_schema(document, source)
    return _LabBuilder(document, source).build()
