"""The expectations phase: the topology's `expect:` list, each from a known namespace to an address."""

import ipaddress

from nsgen.topology.model import Expectation
from nsgen.validate.context import Context, Path
from nsgen.validate.hints import known


def build(ctx: Context) -> None:
    result = []
    for index, spec in enumerate(ctx.doc.get("expect") or []):
        path: Path = ["expect", index]
        if spec["from"] not in ctx.namespaces:
            ctx.problem([*path, "from"], f"unknown namespace '{spec['from']}'{known(spec['from'], ctx.namespaces)}")
            continue
        try:
            address = ipaddress.ip_address(spec["to"])
        except ValueError:
            ctx.problem([*path, "to"], f"invalid address '{spec['to']}'")
            continue
        result.append(Expectation(spec["from"], address, spec["reachable"]))
    ctx.lab_expect = tuple(result)
