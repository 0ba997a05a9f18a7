"""The links phases: each link's ends resolved to ports, declared interfaces left off every link,
and the model's links with typed ends (a veth pair's, or a macvlan's and its parent)."""

import math

from nsgen.topology.conditions import Conditions, kept_percent, rate_bits, shown_time, time_us
from nsgen.topology.ends import MACVLAN, ROOT, BridgePort, Endpoint, MacvlanParent, NamespaceEnd, RootEnd
from nsgen.topology.model import Link
from nsgen.topology.schema import CONDITION_KEYS, IFNAME_MAX
from nsgen.validate import names
from nsgen.validate.context import Context, LinkSpec, Path, Port
from nsgen.validate.hints import known


def resolve(ctx: Context) -> None:
    """Each link's path, its two ends as ports (created for ends that declare no interface), its spec.
    A link with a bad end is left out, and the nodes of its good ends are marked incomplete."""
    used: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(ctx.doc.get("links") or []):
        spec = raw if isinstance(raw, dict) else {"endpoints": raw}
        path: Path = ["links", index]
        ends_path = [*path, "endpoints"] if isinstance(raw, dict) else path
        ctx.mentioned.update(tuple(text.split(":")) for text in spec["endpoints"])
        ends = [_end(ctx, [*ends_path, side], text, used, index) for side, text in enumerate(spec["endpoints"])]
        bad = not all(ends)  # an end that is None (a Port is always true): `None in ends` without Port.__eq__
        if bad or any(end.node in ctx.namespaces and end.node in ctx.bridges for end in ends):
            # a bad or ambiguous end: the nodes of the others may lack what this link would give them
            ctx.incomplete.update(end.node for end in ends if end is not None)
            if bad:
                continue
        resolved = [end for end in ends if end is not None]
        if all(end.node not in ctx.namespaces for end in resolved):
            ctx.problem(path, "a link needs at least one namespace end")
            continue
        macvlan = any(end.node == MACVLAN for end in resolved)
        if macvlan and not all(end.node == MACVLAN or end.node in ctx.namespaces for end in resolved):
            ctx.problem(path, "a macvlan's other end is an interface of a namespace (NS:IFNAME)")
            continue
        ctx.links.append(LinkSpec(path, resolved, spec))


def _end(ctx: Context, path: Path, text: str, used: dict[tuple[str, str], int], index: int) -> Port | None:
    node, ifname = text.split(":")
    if node == MACVLAN:  # a device of the root namespace the lab does not own: its parent
        if len(ifname) > IFNAME_MAX:
            ctx.problem(path, f"parent device name '{ifname}' is longer than {IFNAME_MAX} characters (kernel IFNAMSIZ)")
            return None
        return Port(node, ifname, path)
    if node not in ctx.namespaces and node not in ctx.bridges and node != ROOT:
        choices = [*ctx.namespaces, *ctx.bridges, *([ROOT] if ctx.doc.get("host") else [])]
        ctx.problem(path, f"unknown namespace '{node}'{known(node, choices)}")
        ctx.unknown_ends.add(ifname)
        return None
    if (node, ifname) in used:
        ctx.problem(path, f"interface {node}:{ifname} is already on links[{used[(node, ifname)]}]")
        return None
    used[(node, ifname)] = index
    if len(ifname) > IFNAME_MAX:
        ctx.problem(path, f"interface name '{ifname}' is longer than {IFNAME_MAX} characters (kernel IFNAMSIZ)")
    elif node in ctx.namespaces and (node, ifname) not in ctx.ports:
        names.check_device(ctx, path, ifname)
    if ctx.is_bridge(node):
        return Port(node, ifname, path)  # a bridge port: L2 only, never addressed
    return ctx.ports.setdefault((node, ifname), Port(node, ifname, path))


def check_linked(ctx: Context) -> None:
    """Every declared interface is named by a link (a broken one too: its problem is reported
    already), or may be what an end on an unknown node meant (a typo of the node's name)."""
    for (node, name), port in ctx.ports.items():
        if (node, name) not in ctx.mentioned and name not in ctx.unknown_ends:
            ctx.problem(port.path, "not on any link (add it to links, or remove it)")


def _condition_problems(values: dict[str, str]) -> list[tuple[str, str]]:
    """What the kernel would refuse of one direction's conditions (the schema checked their spelling)."""
    problems = []
    if "jitter" in values and time_us(values["jitter"]) and not time_us(values.get("delay", "0s")):
        problems.append(("jitter", "jitter without a delay: give the delay it varies (tc keeps no jitter of a delay of 0)"))
    if "rate" in values and (problem := _rate_problem(values["rate"])):
        problems.append(("rate", problem))
    loss = values.get("loss", "0%")
    if float(loss.rstrip("%")) > 100:
        problems.append(("loss", f"loss {loss} is above 100%"))
    elif float(loss.rstrip("%")) and not kept_percent(loss):
        problems.append(("loss", f"loss {loss} is kept by the kernel as 0% (a share of 2**32 - 1): give 0.0000001% or more"))
    problems += [(key, problem) for key in ("delay", "jitter") if key in values and (problem := _time_problem(key, values[key]))]
    return problems


#: The longest netem time tc takes, in microseconds: 2**32 - 1 of its 64 ns ticks (274.88 s).
MAX_TIME_US = 274_877_906


def _time_problem(key: str, time: str) -> str | None:
    """Why status could not read a netem time back as declared: tc prints it with three significant
    digits, and below 1 ms rounded as each iproute2 version does."""
    us = time_us(time)
    if us > MAX_TIME_US:
        return f"{key} {time} is above 274s, the longest tc takes (it keeps a time in 32 bits of 64 ns ticks)"
    if 0 < us < 1000:
        return f"{key} {time} is below 1ms, which tc shows rounded (differently by version): give 1ms or more, or 0"
    if us and not math.isclose(time_us(shown := shown_time(us)), us):
        said = f"{key} {time} is shown by tc as {shown}, so status would never see it as declared"
        return f"{said}: give 3 significant digits at most"
    return None


#: The fastest rate a link takes: tbf's bucket (10 ms of the rate) must fit, and no veth is faster.
MAX_RATE = "100gbit"


def _rate_problem(rate: str) -> str | None:
    """Why tbf cannot take `rate` as written, or verify could not read it back as declared: the
    kernel keeps whole bytes a second, and tc shows a rate of a million or more of its unit in
    the next unit, cutting off what does not divide."""
    bits = rate_bits(rate)
    if bits < 1:
        return f"rate {rate} lets nothing through: give a rate above 0"
    if bits < 8:
        return f"rate {rate} is below 8bit (a byte a second), the least tbf takes"
    if bits != int(bits) or int(bits) % 8:
        return f"rate {rate} is not a whole number of bytes a second (8bit each): the kernel keeps {int(bits) // 8 * 8}bit"
    if bits > rate_bits(MAX_RATE):
        return f"rate {rate} is above {MAX_RATE}: tbf's bucket cannot hold 10 ms of it"
    shown = int(bits)
    for unit in ("bit", "kbit", "mbit"):
        if shown >= 10**6 and shown % 1000:
            larger = _next_unit(unit)
            return f"rate {rate} is shown by tc as {shown // 1000}{larger}, so verify never sees it: give it in whole {larger}"
        if shown < 1000 or shown % 1000:
            break
        shown //= 1000
    return None


def _next_unit(unit: str) -> str:
    return {"bit": "kbit", "kbit": "mbit", "mbit": "gbit"}[unit]


def _endpoint(ctx: Context, port: Port) -> Endpoint:
    if port.node == MACVLAN:
        return MacvlanParent(port.name)
    if ctx.is_bridge(port.node):
        return BridgePort(port.node, port.name, ctx.prefix)
    if port.node == ROOT:
        return RootEnd(port.name, ctx.prefix)
    return NamespaceEnd(port.node, port.name, ctx.prefix)


def typed_links(ctx: Context) -> None:
    """The links of the model, each end typed (namespace end, bridge port, root end, macvlan parent:
    `nsgen.topology.ends`), with the conditions on what each end sends."""
    ctx.lab_links = tuple(
        Link(_endpoint(ctx, a), _endpoint(ctx, b), tuple(ctx.subnets.get(tuple(link.path), ())), sends=_sends(ctx, link))
        for link in ctx.links
        for a, b in [link.ends]
    )


def _sends(ctx: Context, link: LinkSpec) -> tuple[Conditions | None, Conditions | None]:
    """The conditions on what each end sends: the link's own keys, then its `from: {NODE: ...}` over them."""
    per_end = link.spec.get("from") or {}
    if not per_end and not any(key in link.spec for key in CONDITION_KEYS):
        return None, None  # most links: nothing conditioned
    both = {key: link.spec[key] for key in CONDITION_KEYS if key in link.spec}
    nodes = [end.node for end in link.ends]
    for node in per_end:
        if node not in nodes:
            ctx.problem([*link.path, "from", node], f"'{node}' is not an end of this link (its ends: {', '.join(nodes)})")
    sends, problems = [], {}
    for node in nodes:
        own = per_end.get(node) or {}
        if node == MACVLAN:  # what the parent sends is none of the lab's
            if own:
                ctx.problem([*link.path, "from", node], "a macvlan's parent is not the lab's: condition its namespace end")
            sends.append(None)
            continue
        values = {**both, **own}
        for key, message in _condition_problems(values):
            path = [*link.path, "from", node, key] if key in own else [*link.path, key]
            problems[tuple(path)] = message  # a problem of the link's own keys is one, not one per end
        sends.append(Conditions(**values) if values else None)
    for path, message in problems.items():
        ctx.problem(list(path), message)
    return sends[0], sends[1]
