"""Turning a parsed topology document into a complete `Lab`, or every problem with it.

`PHASES` is what runs, in order: each phase checks one kind of rule over the shared `Context` and
completes its part of the model (default aliases, interfaces named only by links, addresses handed
out from a segment's `subnet`). The schema phase is the one checkpoint: a document of the wrong
structure stops there, since every phase after it reads that structure. After it, a phase never
skips a check because an unrelated problem was found: an object another phase found broken is
marked in the context, and only checks that read that object pass over it. So every independent
problem is reported in one run, each naming the file, the field and what is wrong.
"""

from collections.abc import Callable
from typing import Any

from nsgen.problems import TopologyError
from nsgen.topology.model import Lab
from nsgen.validate import (
    assemble,
    expectations,
    interfaces,
    kernel_limits,
    links,
    names,
    namespaces,
    outside,
    placement,
    root_devices,
    schema_check,
    segments,
    text,
)
from nsgen.validate.context import Context

Phase = Callable[[Context], None]

#: The phases, in order: (name, function, whether later phases need it to have found nothing).
PHASES: tuple[tuple[str, Phase, bool], ...] = (
    ("schema", schema_check.check, True),  # structure, types, name syntax: the checkpoint
    ("text", text.check, False),  # no invisible format character in any string
    ("names", names.check_nodes, False),  # namespaces and bridges: reserved, clashing, too long
    ("interfaces", interfaces.declare, False),  # declared interfaces and bridges, their addresses
    ("links", links.resolve, False),  # each link's ends resolved; a broken link marks its nodes
    ("unlinked", links.check_linked, False),  # no declared interface left off every link
    ("segments", segments.build, False),  # L2 segments: bridges with their ports' far ends, links
    ("subnets", segments.check_subnets, False),  # addresses inside their subnet, no subnet overlap
    ("macs", segments.check_macs, False),  # no MAC twice on one segment
    ("addresses", segments.assign_addresses, False),  # `subnet` hands addresses out (sound segments)
    ("namespaces", namespaces.build, False),  # routes and gateways, sysctls, default aliases
    ("aliases", names.check_aliases, False),  # the guide's helper names: unique, not the shell's
    ("typed links", links.typed_links, False),  # typed link ends (nsgen.topology.ends)
    ("root devices", root_devices.check, False),  # root-namespace names: fit, no clash
    ("expectations", expectations.build, False),  # the `expect:` list
    ("outside", outside.build, False),  # NAT to the outside, the machine's ports forwarded in
    ("placement", placement.check, False),  # multi-host labs: hosts, namespaces' host, bridges' hosts, VNIs, MTUs
    ("model", assemble.build, False),  # the Lab, from what the phases above built
    ("kernel limits", kernel_limits.check, False),  # what the kernel would refuse at setup, on the built model
)


def build_lab(document: Any, source: str, prefix: str | None = None) -> Lab:
    """Validate `document` (parsed YAML) and return the complete lab; `prefix` overrides the file's.
    Raises TopologyError with every problem found."""
    if prefix is not None and isinstance(document, dict):
        document = {**document, "prefix": prefix}
    ctx = Context(document, source)
    for _, phase, checkpoint in PHASES:
        phase(ctx)
        if checkpoint and ctx.problems:
            break
    if ctx.problems or ctx.lab is None:
        raise TopologyError(ctx.problems)
    return ctx.lab
