"""A namespace's services (`run:`): each named (by default its command's first word) and unique in
its namespace, with at most one thing to wait for."""

import re
from typing import Any

from nsgen.topology.model import Service
from nsgen.topology.schema import SERVICE_NAME
from nsgen.validate.context import Context, Path

#: How long setup waits for a service to be ready, unless its `ready:` says.
READY_TIMEOUT = 10


def _default_name(command: str) -> str | None:
    """A service's name when it gives none: its command's first word, without a directory."""
    first = command.split()[0].rsplit("/", 1)[-1] if command.split() else ""
    return first if re.match(SERVICE_NAME, first) and len(first) <= 64 else None


def build(ctx: Context, path: Path, specs: list[Any]) -> tuple[Service, ...]:
    """The services a namespace's `run:` list declares (at `path`)."""
    services: dict[str, Service] = {}
    for index, spec in enumerate(specs):
        entry = {"command": spec} if isinstance(spec, str) else spec
        here: Path = [*path, index]
        name = entry.get("name") or _default_name(entry["command"])
        if name is None:
            ctx.problem(here, f"the first word of '{entry['command']}' is not a service name: give it a name")
            continue
        if name in services:
            where = "name" if "name" in entry else "command"
            ctx.problem([*here, where], f"a second service named '{name}' in this namespace: give one another name")
            continue
        ready = entry.get("ready") or {}
        kinds = [key for key in ("tcp", "file") if key in ready]
        if len(kinds) != 1 and ready:
            ctx.problem([*here, "ready"], "give one of tcp (a port that listens) or file (a path that appears)")
            continue
        waited = f"{kinds[0]}:{ready[kinds[0]]}" if kinds else None
        twin = next((s.name for s in services.values() if waited and s.ready == waited), None)
        if twin is not None:  # the second would be found ready on the first's port, or file
            ctx.problem([*here, "ready", kinds[0]], f"service '{twin}' in this namespace waits for the same: give each its own")
            continue
        services[name] = Service(name, entry["command"], waited, ready.get("timeout", READY_TIMEOUT))
    return tuple(services.values())
