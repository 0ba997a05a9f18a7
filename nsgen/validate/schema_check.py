"""The schema phase: the topology's structure, types and name syntax, checked against the JSON Schema.

The one checkpoint that stops validation: the phases after it read the document's structure.
"""

import functools
from collections.abc import Callable
from typing import Any

import fastjsonschema

from nsgen.problems import Problem, TopologyError, field_path
from nsgen.topology.schema import IFNAME_MAX, SCHEMA
from nsgen.validate.context import Context, Path
from nsgen.validate.hints import describe, known


@functools.cache
def _fast_check() -> Callable[[Any], Any]:
    """The schema compiled to Python, once, when a topology is first checked (not at import: the
    commands that read no topology, and shell completion, start 0.05 s sooner). A valid topology
    (the common case) is checked in milliseconds; an invalid one is checked again by jsonschema,
    which names every problem."""
    return fastjsonschema.compile(SCHEMA)


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


def _schema_problems(source: str, error: Any) -> list[Problem]:
    """The problems one jsonschema ValidationError stands for, in nsgen's words."""
    path: Path = list(error.absolute_path)
    schema, value, keyword = error.schema, error.instance, error.validator
    if "propertyNames" in error.absolute_schema_path:
        path.append(value)  # the offending key itself: report it where it stands
    if keyword == "additionalProperties":
        allowed = schema.get("properties", {})
        return [
            Problem(source, field_path([*path, key]), f"unknown key{known(str(key), allowed)}")
            for key in value
            if key not in allowed
        ]
    if keyword == "required":
        return [
            Problem(source, field_path(path), f"missing required key '{key}'")
            for key in error.validator_value
            if key not in value
        ]
    if keyword == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in wanted)
        hint = " (YAML reads yes/no/on/off as booleans: quote the value)" if isinstance(value, bool) else ""
        return [Problem(source, field_path(path), f"expected {expected}, got {describe(value)}{hint}")]
    title = schema.get("title", "value")
    count = len(value) if isinstance(value, (list, dict, str)) else 0
    limit = error.validator_value
    messages = {
        "pattern": f"invalid {title} {value!r}: {schema.get('description', '')}",
        "maxLength": f"{title} {value!r} is longer than {limit} characters"
        + (" (kernel IFNAMSIZ)" if limit == IFNAME_MAX else ""),
        "minLength": f"{title} must not be empty",
        "minItems": f"a {title} has {limit} entries, got {count}",
        "maxItems": f"a {title} has at most {limit} entries, got {count}",
        "minProperties": f"{title} must not be empty",
        "minimum": f"{title} {value!r} is below {limit}",
        "maximum": f"{title} {value!r} is above {limit}",
    }
    return [Problem(source, field_path(path), messages.get(keyword, error.message))]


def check_schema(document: Any, source: str) -> None:
    """Raise TopologyError listing every structural problem of `document`."""
    if not isinstance(document, dict):
        what = "the file is empty" if document is None else f"the top level is {describe(document)}"
        raise TopologyError([Problem(source, "", f"{what}; expected a mapping with name, namespaces and links")])
    try:
        _fast_check()(document)
        return
    except fastjsonschema.JsonSchemaException as fast_error:
        from jsonschema import Draft202012Validator  # only invalid topologies pay for its import

        problems = [p for e in Draft202012Validator(SCHEMA).iter_errors(document) for p in _schema_problems(source, e)]
        if not problems:  # the two validators disagree: still refuse, with what the fast one saw
            problems = [Problem(source, "", str(fast_error.message))]
        raise TopologyError(sorted(set(problems), key=lambda p: (p.field, p.message))) from None


def check(ctx: Context) -> None:
    """The schema phase: every structural problem of the document (a checkpoint: nothing runs after it)."""
    try:
        check_schema(ctx.doc, ctx.source)
    except TopologyError as error:
        ctx.problems += error.problems
