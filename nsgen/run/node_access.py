"""Entering a lab's namespaces: run a command, open a shell or capture packets inside one of them.

A node is named as in the topology (`ns-0`); the kernel's namespace carries the lab's prefix (`t1-ns-0`).
Each function builds an argv list; the CLI execs it, so exit status, signals and the terminal are the
command's own.
"""

import shutil
from pathlib import Path

from nsgen.problems import Problem, TopologyError
from nsgen.topology.model import Lab, Namespace

NETNS_DIR = Path("/run/netns")
RCFILE = Path(__file__).with_name("netns.bashrc")
#: The variable naming the namespace to `netns.bashrc`, which puts it in the prompt.
NETNS_VARIABLE = "NSGEN_NETNS"


def namespace(lab: Lab, node: str, must_exist: bool = True) -> Namespace:
    """The lab's namespace called `node`, which must (by default) exist in the kernel; else one problem."""
    if node not in {ns.name for ns in lab.namespaces}:
        known = ", ".join(ns.name for ns in lab.namespaces)
        raise TopologyError([Problem(node, "", f"no such node in lab '{lab.name}' (its namespaces: {known})")])
    ns = lab.namespace(node)
    if must_exist and not (NETNS_DIR / ns.netns).exists():
        raise TopologyError([Problem(node, "", f"namespace '{ns.netns}' does not exist: is the lab up (`nsgen up`)?")])
    return ns


def exec_argv(lab: Lab, node: str, command: list[str]) -> list[str]:
    """`ip netns exec NETNS COMMAND...` for the node's namespace."""
    if not command:
        raise TopologyError([Problem(node, "", "no command given (nsgen exec NODE -- COMMAND...)")])
    return ["ip", "netns", "exec", namespace(lab, node).netns, *command]


def shell_argv(lab: Lab, node: str) -> tuple[list[str], dict[str, str]]:
    """An interactive bash in the node's namespace, and the environment that names it in the prompt."""
    netns = namespace(lab, node).netns
    shell = ["ip", "netns", "exec", netns, "bash", "--rcfile", str(RCFILE), "-i"]
    return shell, {NETNS_VARIABLE: netns}


def capture_argv(lab: Lab, target: str, expression: list[str], write: Path | None = None, count: int | None = None) -> list[str]:
    """tcpdump on NODE:IFACE inside the node's namespace, or on a lab bridge (by its topology name) in
    the root namespace, with a tcpdump filter `expression`; optionally writing a pcap and stopping after `count`."""
    node, colon, ifname = target.partition(":")
    bridge = next((br for br in lab.bridges if br.name == target), None)
    if bridge is None and (not colon or not node or not ifname):
        bridges = f", or a bridge: {', '.join(br.name for br in lab.bridges)}" if lab.bridges else ""
        raise TopologyError([Problem(target, "", f"give the interface as NODE:IFACE, e.g. ns-0:veth-0{bridges}")])
    if bridge is None:
        ns = namespace(lab, node, must_exist=False)
        device = next((iface.device for iface in ns.interfaces if iface.name == ifname), None)
        if device is None:
            known = ", ".join(iface.name for iface in ns.interfaces)
            raise TopologyError([Problem(target, "", f"node '{node}' has no interface '{ifname}' (its interfaces: {known})")])
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise TopologyError([Problem("tcpdump", "", "not installed (it is the Debian package tcpdump)")])
    options = [*(["-w", str(write)] if write is not None else []), *(["-c", str(count)] if count is not None else [])]
    if bridge is not None:
        if not Path("/sys/class/net", bridge.device).exists():
            raise TopologyError([Problem(target, "", f"bridge '{bridge.device}' does not exist: is the lab up (`nsgen up`)?")])
        return [tcpdump, "-n", "-i", bridge.device, *options, *expression]
    return ["ip", "netns", "exec", namespace(lab, node).netns, tcpdump, "-n", "-i", device, *options, *expression]
