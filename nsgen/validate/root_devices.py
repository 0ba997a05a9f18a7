"""The root-devices phase: the lab's root-namespace names fit IFNAMSIZ with the prefix, and no two
lab objects (bridges, root-side link ends) share one; a macvlan's parent is none of them."""

from nsgen.topology.ends import owned
from nsgen.topology.schema import IFNAME_MAX
from nsgen.validate import names
from nsgen.validate.context import Context, Path


def check(ctx: Context) -> None:
    owners: dict[str, str] = {}
    named: list[tuple[Path, str, str]] = [(["bridges", name], ctx.prefix + name, f"bridge {name}") for name in ctx.bridges]
    parents: list[tuple[Path, str]] = []
    for spec, link in zip(ctx.links, ctx.lab_links, strict=True):
        for end in (link.a, link.b):
            if not owned(end):
                parents.append((spec.path, end.device))
            elif end.netns is None:
                named.append((spec.path, end.device, f"link end {end}"))
    for path, device, what in named:
        if device in names.KERNEL_DEVICE_NAMES:
            names.check_device(ctx, path, device)
        elif len(device) > IFNAME_MAX:
            ctx.problem(path, f"root-namespace device '{device}' (with prefix) is longer than {IFNAME_MAX} characters")
        elif device in owners:
            ctx.problem(path, f"root-namespace device '{device}' of {what} clashes with {owners[device]}")
        owners.setdefault(device, what)
    for path, device in parents:
        if device in names.KERNEL_DEVICE_NAMES:
            names.check_device(ctx, path, device)
        elif device in owners:
            ctx.problem(path, f"macvlan parent '{device}' is the lab's {owners[device]}: a parent is a device it does not own")
