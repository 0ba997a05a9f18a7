"""Reading topology files (strict YAML) and writing normalised ones."""

from pathlib import Path
from typing import Any

import yaml

from nsgen.model import Lab, Route
from nsgen.problems import Problem, TopologyError

#: Larger files are refused before parsing: a lab of thousands of namespaces stays far below it.
MAX_FILE_BYTES = 8 * 1024 * 1024

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in mapping
        except TypeError:  # an unhashable key: a list or mapping used as a key
            raise yaml.constructor.ConstructorError(
                None, None, "a list or mapping cannot be a key", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, source: str) -> Any:
    """Parse YAML text; `source` names it in errors."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown position)"
        what = exc.problem or exc.context or "invalid YAML"
        raise TopologyError([Problem(source, where, f"YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([Problem(source, "", f"YAML: {exc}")]) from None


def read(path: Path) -> Any:
    """Read and parse a topology file, refusing what cannot be a topology before parsing it."""
    source = path.name
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TopologyError(
                [Problem(source, "", f"file is {size} bytes; a topology may have at most {MAX_FILE_BYTES}")]
            )
        data = path.read_bytes()
    except OSError as exc:
        raise TopologyError([Problem(source, "", f"cannot read: {exc.strerror}")]) from None
    if b"\0" in data:
        raise TopologyError([Problem(source, "", "not a text file (it contains NUL bytes)")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TopologyError([Problem(source, "", f"not UTF-8 text (bad byte at offset {exc.start})")]) from None
    return parse(text, source)


def dump(document: dict[str, Any]) -> str:
    """YAML for a normalised topology document: keys in the order given, block style."""
    return yaml.dump(document, Dumper=_BaseDumper, sort_keys=False, default_flow_style=None, allow_unicode=True)


def document(lab: Lab) -> dict[str, Any]:
    """The normalised topology of `lab`: every default filled in, loadable again as it is."""
    doc: dict[str, Any] = {"name": lab.name, "description": lab.description}
    if lab.prefix:
        doc["prefix"] = lab.prefix
    doc["namespaces"] = {
        ns.name: {
            "alias": ns.alias,
            "interfaces": {
                iface.name: {"addresses": [a.with_prefixlen for a in iface.addresses]} for iface in ns.interfaces
            },
            "routes": [_route(route) for route in ns.routes],
        }
        for ns in lab.namespaces
    }
    doc["links"] = [[str(link.a), str(link.b)] for link in lab.links]
    return doc


def _route(route: Route) -> dict[str, str]:
    entry = {"to": route.destination}
    if route.dev is not None:
        entry["dev"] = route.dev
    if route.via is not None:
        entry["via"] = str(route.via)
    return entry
