"""The namespaces phase: each namespace of the model with its interfaces, routes (gateways reached
through a connected subnet or an on-link route), sysctls, services and default alias."""

from typing import Any

from nsgen.topology.model import Interface, Namespace, Route
from nsgen.validate import services
from nsgen.validate.context import Context, Path, Port, parsed_address, parsed_network
from nsgen.validate.hints import known


def interface(port: Port, device: str) -> Interface:
    """A port as the model's interface, named `device` in the kernel."""
    return Interface(port.name, device, tuple(port.addresses), port.spec.get("mtu"), port.spec.get("mac"))


def build(ctx: Context) -> None:
    """The namespaces of the model: interfaces, routes (checked), sysctls, default aliases."""
    ports_of: dict[str, list[Port]] = {}
    for (node, _), port in ctx.ports.items():
        ports_of.setdefault(node, []).append(port)
    ctx.lab_namespaces = tuple(_namespace(ctx, index, name, ports_of.get(name, [])) for index, name in enumerate(ctx.namespaces))


def _namespace(ctx: Context, index: int, name: str, ports: list[Port]) -> Namespace:
    spec = ctx.namespaces[name]
    path: Path = ["namespaces", name]
    interfaces = tuple(interface(port, port.name) for port in ports)
    connected = [a.network for iface in interfaces for a in iface.addresses if a.network.prefixlen < a.max_prefixlen]
    ifnames = [i.name for i in interfaces]
    routes: list[tuple[int, Route]] = []
    for route_index, route_spec in enumerate(spec.get("routes") or []):
        route = _route(ctx, [*path, "routes", route_index], route_spec, ifnames)
        if route is None:
            continue
        if routes and route.to in {r.to for _, r in routes}:
            ctx.problem([*path, "routes", route_index, "to"], f"a second route to {route.to}")
        routes.append((route_index, route))
    onlink = connected + [r.to for _, r in routes if r.via is None]
    own = {a.ip: i.name for i in interfaces for a in i.addresses}
    # a namespace whose addresses a broken link or segment left incomplete: its gateways are not judged
    for route_index, route in routes if name not in ctx.incomplete else ():
        if route.via in own:
            message = f"gateway {route.via} is this namespace's own address (on {own[route.via]})"
            ctx.problem([*path, "routes", route_index, "via"], message)
        elif route.via is None or (route.dev is not None and route.via.is_link_local):
            continue  # a link-local gateway is reached through the route's own device
        elif not any(route.via in net for net in onlink if net.version == route.via.version):
            ctx.problem([*path, "routes", route_index, "via"], f"gateway {route.via} is on no connected subnet of this namespace")
    return Namespace(
        name=name,
        netns=ctx.prefix + name,
        alias=spec.get("alias") or f"ip{index}",
        interfaces=interfaces,
        routes=tuple(route for _, route in routes),
        sysctls=tuple((key, str(value)) for key, value in (spec.get("sysctls") or {}).items()),
        services=services.build(ctx, [*path, "run"], spec["run"] or []) if "run" in spec else (),
    )


def _route(ctx: Context, path: Path, spec: dict[str, Any], ifnames: list[str]) -> Route | None:
    ok = True
    dev = spec.get("dev")
    via = None
    if dev is not None and dev not in ifnames:
        ctx.problem([*path, "dev"], f"unknown device '{dev}' in this namespace{known(dev, ifnames)}")
        ok = False
    if "via" in spec:
        try:
            via = parsed_address(spec["via"])
        except ValueError:
            ctx.problem([*path, "via"], f"invalid gateway address '{spec['via']}'")
            ok = False
    if dev is None and "via" not in spec:
        ctx.problem(path, "a route needs 'dev', 'via' or both")
        ok = False
    if spec["to"] == "default":
        to = parsed_network("::/0" if via is not None and via.version == 6 else "0.0.0.0/0")
    else:
        to = ctx.network([*path, "to"], spec["to"])
        if to is None:
            return None
    if via is not None and via.version != to.version:
        ctx.problem([*path, "via"], f"gateway {via} is IPv{via.version} but the destination is IPv{to.version}")
        ok = False
    return Route(to=to, dev=dev, via=via) if ok else None
