"""Multi-host labs: one topology placed on machines, each machine's part rendered as a standalone lab,
and an Ansible inventory and playbook that deploy them.

`host_lab(lab, host)` is one machine's part as an ordinary `Lab`: its namespaces, its part of every
bridge on it, the veth links whose ends are all there, and its VXLAN devices (`tunnels`): one per end
of a link whose other end sits on another machine, one per spanning bridge. The plan and render
machinery of one-machine labs renders it unchanged: the same runtime, dry run, lock, rollback and
idempotent teardown. Its verify.sh pings across machines: the other machines' namespaces are its
`peers`, so reachability sees the whole lab while only this machine's namespaces ping.
"""

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence

import yaml

from nsgen import __version__
from nsgen.plan import declared
from nsgen.plan.as_found import Found
from nsgen.problems import Problem, TopologyError
from nsgen.render import lab_files, templates
from nsgen.render.styles import Style
from nsgen.topology import yaml_file
from nsgen.topology.ends import BridgePort, NamespaceEnd, VxlanEnd, VxlanPort
from nsgen.topology.model import Lab, Namespace, stable_mac
from nsgen.validate import placement
from nsgen.validate.sources import LoadedLab

#: What each host's directory holds (demo.sh types one machine's lab: left out; status.sh is a host's own).
HOST_ARTIFACTS = ("setup.sh", "teardown.sh", "verify.sh", "check.sh", "status.sh", "helpers.sh", "README.md", "topology.yaml")
HOST_SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "check.sh", "status.sh")
STATUS = "status.sh"
#: A change's scripts, in each host's directory beside the playbook: the change there, and its reverse
#: (run where the change was applied while another host's failed).
CHANGE = (lab_files.APPLY, "revert.sh")
#: The files beside the hosts' directories.
DEPLOYMENT = ("site.yml", "inventory.yml", "ansible.cfg", "README.md", "topology.yaml")


def is_multihost(lab: Lab) -> bool:
    return bool(lab.machines)


def _overlay_mtu(lab: Lab, hosts: Sequence[str]) -> int:
    return min(lab.machine(host).overlay_mtu for host in hosts)


def host_lab(lab: Lab, host: str) -> Lab:
    """Machine `host`'s part of the multi-host `lab`, as a lab of its own."""
    machine = lab.machine(host)
    local = {ns.name for ns in lab.namespaces if ns.host == host}
    mtus: dict[tuple[str, str], int] = {}  # namespace interfaces carried over VXLAN: their default MTU
    tunnels: list[VxlanEnd | VxlanPort] = []
    links = []
    spanning = {br.name: br for br in lab.bridges if len(br.hosts) > 1}
    for link in lab.links:
        ends = (link.a, link.b)
        names = [end for end in ends if isinstance(end, NamespaceEnd)]
        if link.vni is not None:  # a cross-host link: this machine's end becomes a VXLAN device
            for end, other, sends in ((link.a, link.b, link.sends[0]), (link.b, link.a, link.sends[1])):
                if isinstance(end, NamespaceEnd) and end.node in local:
                    remote = lab.machine(lab.namespace(other.node).host or "")
                    mtu = _overlay_mtu(lab, (host, remote.name))
                    mac = lab.namespace(end.node).interface(end.interface).mac or stable_mac(lab.key, str(end))
                    tunnels.append(VxlanEnd(end, link.vni, machine.address, remote.address, lab.vxlan.port, mtu, sends, mac))
                    mtus[(end.node, end.interface)] = mtu
            continue
        if all(end.node in local for end in names):
            links.append(link)
            for end in ends:
                if isinstance(end, BridgePort) and end.node in spanning:
                    far = next(e for e in names)
                    mtus[(far.node, far.interface)] = _overlay_mtu(lab, spanning[end.node].hosts)
    bridges = []
    for bridge in lab.bridges:
        if host not in bridge.hosts:
            continue
        first = bridge.hosts[0] == host
        # one gateway per segment; each other machine's part a MAC of its own (one segment, no MAC twice)
        own_mac = stable_mac(f"{lab.key}@{host}", bridge.name)
        bridges.append(bridge if first else dataclasses.replace(bridge, addresses=(), mac=own_mac))
        if bridge.vni is not None:
            remotes = tuple(lab.machine(h).address for h in bridge.hosts if h != host)
            device = placement.port_device(lab.prefix, bridge.vni)
            mtu = _overlay_mtu(lab, bridge.hosts)
            tunnels.append(VxlanPort(device, bridge.device, bridge.vni, machine.address, remotes, lab.vxlan.port, mtu))

    def placed(ns: Namespace) -> Namespace:
        interfaces = tuple(
            dataclasses.replace(i, mtu=mtus[(ns.name, i.name)]) if i.mtu is None and (ns.name, i.name) in mtus else i
            for i in ns.interfaces
        )
        return dataclasses.replace(ns, interfaces=interfaces)

    return dataclasses.replace(
        lab,
        description=f"{lab.description} (host {host}'s part)".lstrip(),
        namespaces=tuple(placed(ns) for ns in lab.namespaces if ns.name in local),
        links=tuple(links),
        bridges=tuple(bridges),
        expect=tuple(e for e in lab.expect if e.source in local),
        # NAT where a subnet's traffic meets this machine's root namespace (its bridges' addresses), its namespaces' ports
        nat=tuple(net for net in lab.nat if any(a.network.overlaps(net) for br in bridges for a in br.addresses)),
        forwards=tuple(forward for forward in lab.forwards if forward.node in local),
        tunnels=tuple(tunnels),
        peers=tuple(ns for ns in lab.namespaces if ns.name not in local),
    )


def inventory(lab: Lab) -> str:
    """The Ansible inventory: each host with `ansible_host` (its underlay address unless its `ansible:`
    says otherwise) and exactly the variables the topology gives; the rest comes from Ansible's
    environment and configuration (ANSIBLE_REMOTE_USER, ANSIBLE_PRIVATE_KEY_FILE, ...)."""
    header = (
        f"# The Ansible inventory of the nsgen lab '{lab.name}' (generated by nsgen {__version__}; do not edit).\n"
        "# It sets only what the topology says: user, key and host-key checking come from Ansible's environment\n"
        "# (ANSIBLE_REMOTE_USER, ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_HOST_KEY_CHECKING, ...) or ansible.cfg.\n"
    )
    hosts = {m.name: {"ansible_host": str(m.address), **dict(m.ansible)} for m in lab.machines}
    return header + yaml.safe_dump({"all": {"hosts": hosts}}, sort_keys=False, default_flow_style=False, allow_unicode=True)


def status_script(part: LoadedLab, topology: str) -> str:
    """A host's status.sh: its part's declared state compared with the kernel there by the scripts'
    own reader (the runtime section facts), each difference printed as drift_rows' fields."""
    return templates.template(f"multihost/{STATUS}.j2").render(
        lab=part.lab,
        origin=part.origin,
        version=__version__,
        digest=hashlib.sha256(topology.encode()).hexdigest(),
        script=STATUS,
        fact_places=declared.places(declared.declared(part.lab)),
        accepted=declared.accepted(part.lab),
        runtime=templates.runtime(STATUS),
        runtime_sections=templates.SCRIPT_SECTIONS[STATUS],
    )


def render(loaded: LoadedLab, style: Style | str = Style.batched) -> dict[str, str]:
    """Every file of a multi-host lab, by relative path: HOST/setup.sh ... and the deployment files."""
    lab = loaded.lab
    topology = yaml_file.dump(yaml_file.document(lab))
    files: dict[str, str] = {}
    for machine in lab.machines:
        part = LoadedLab(host_lab(lab, machine.name), f"{loaded.origin}, host {machine.name}")
        rendered = {**lab_files.render(part, style, topology=topology), STATUS: status_script(part, topology)}
        files.update({f"{machine.name}/{name}": rendered[name] for name in HOST_ARTIFACTS})
    context = {
        "lab": lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "parts": {m.name: host_lab(lab, m.name) for m in lab.machines},
    }
    for name in ("site.yml", "ansible.cfg", "README.md"):
        files[name] = templates.template(f"multihost/{name}.j2").render(context)
    files["inventory.yml"] = inventory(lab)
    files["topology.yaml"] = topology
    return files


def executables(lab: Lab) -> tuple[str, ...]:
    return tuple(f"{machine.name}/{script}" for machine in lab.machines for script in (*HOST_SCRIPTS, *CHANGE))


def _changeable(old: Lab, new: LoadedLab) -> None:
    """A change keeps the hosts (their names and addresses): else one problem, nothing written."""
    if old.machines != new.lab.machines:
        said = "the change moves the lab to other hosts (or other addresses): nsgen down, then nsgen up"
        raise TopologyError([Problem(new.origin, "hosts", said)])


def render_apply(old: Lab, new: LoadedLab, found: Mapping[str, Found], style: Style | str = Style.batched) -> dict[str, str]:
    """The new lab's deployment with each host's change: HOST/apply.sh, from the running `old` as `found`
    there (its drift repaired), and HOST/revert.sh, back from the new lab to the old one."""
    _changeable(old, new)
    files = render(new, style)
    records = (lab_files.record_text(old), files["topology.yaml"])
    for machine in new.lab.machines:
        host = machine.name
        before = LoadedLab(host_lab(old, host), f"the running lab, host {host}")
        after = LoadedLab(host_lab(new.lab, host), f"{new.origin}, host {host}")
        forward = lab_files.render_apply(before.lab, after, style, False, found[host], records)
        back = lab_files.render_apply(after.lab, before, style, False, records=(records[1], records[0]))
        files[f"{host}/{CHANGE[0]}"], files[f"{host}/{CHANGE[1]}"] = forward[lab_files.APPLY], back[lab_files.APPLY]
    return files
