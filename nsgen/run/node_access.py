"""Entering a lab's namespaces: run a command, open a shell or capture packets inside one of them.

A node is named as in the topology (`ns-0`); the kernel's namespace carries the lab's prefix (`t1-ns-0`).
Each function builds an argv list; the CLI execs it, so exit status, signals and the terminal are the
command's own. A multi-host lab's namespace is entered on its host, over SSH as Ansible would connect
(run/ssh_access.py): ssh passes on the remote command's exit status (255: ssh's own failure).
"""

import shutil
from pathlib import Path

from nsgen.problems import Problem, TopologyError
from nsgen.run.ssh_access import ssh_argv
from nsgen.topology.model import Lab, Namespace

NETNS_DIR = Path("/run/netns")
RCFILE = Path(__file__).with_name("netns.bashrc")
#: The variable naming the namespace to `netns.bashrc`, which puts it in the prompt.
NETNS_VARIABLE = "NSGEN_NETNS"


def namespace(lab: Lab, node: str, must_exist: bool = True) -> Namespace:
    """The lab's namespace called `node`, which must (by default) exist in the kernel; else one problem.
    On another host (a multi-host lab) it is not looked for here: entering it there says if it is missing."""
    if node not in {ns.name for ns in lab.namespaces}:
        known = ", ".join(ns.name for ns in lab.namespaces)
        raise TopologyError([Problem(node, "", f"no such node in lab '{lab.name}' (its namespaces: {known})")])
    ns = lab.namespace(node)
    if must_exist and ns.host is None and not (NETNS_DIR / ns.netns).exists():
        raise TopologyError([Problem(node, "", f"namespace '{ns.netns}' does not exist: is the lab up (`nsgen up`)?")])
    return ns


def exec_argv(lab: Lab, node: str, command: list[str]) -> list[str]:
    """`ip netns exec NETNS COMMAND...` for the node's namespace."""
    if not command:
        raise TopologyError([Problem(node, "", "no command given (nsgen exec NODE -- COMMAND...)")])
    ns = namespace(lab, node)
    return placed(lab, ns, ["ip", "netns", "exec", ns.netns, *command])


def placed(lab: Lab, ns: Namespace, argv: list[str], tty: bool = False) -> list[str]:
    """`argv` run where `ns` lives: here, or on its host over SSH (`tty`: on a terminal there)."""
    return argv if ns.host is None else ssh_argv(lab.machine(ns.host), argv, tty)


def shell_argv(lab: Lab, node: str) -> tuple[list[str], dict[str, str]]:
    """An interactive bash in the node's namespace, and the environment that names it in the prompt."""
    ns = namespace(lab, node)
    if ns.host is not None:  # the rcfile is this machine's: the prompt is set on the command line
        prompt = f"PS1=[netns {ns.netns} on {ns.host}] \\u@\\h:\\w\\$ "
        return placed(lab, ns, ["ip", "netns", "exec", ns.netns, "env", prompt, "bash", "--norc", "-i"], tty=True), {}
    shell = ["ip", "netns", "exec", ns.netns, "bash", "--rcfile", str(RCFILE), "-i"]
    return shell, {NETNS_VARIABLE: ns.netns}


def capture_argv(
    lab: Lab, target: str, expression: list[str], write: Path | None = None, count: int | None = None
) -> tuple[list[str], Path | None]:
    """tcpdump on NODE:IFACE inside the node's namespace, or on a lab bridge (by its topology name) in
    the root namespace, with a tcpdump filter `expression`; optionally writing a pcap and stopping after
    `count`. And the file its stdout goes to: a pcap written on another host comes back on ssh's stdout."""
    node, colon, ifname = target.partition(":")
    bridge = next((br for br in lab.bridges if br.name == target), None)
    if bridge is not None and lab.machines:
        said = "a multi-host lab has a bridge on each of its hosts: capture on a port (NODE:IFACE)"
        raise TopologyError([Problem(target, "", said)])
    if bridge is None and (not colon or not node or not ifname):
        bridges = f", or a bridge: {', '.join(br.name for br in lab.bridges)}" if lab.bridges and not lab.machines else ""
        raise TopologyError([Problem(target, "", f"give the interface as NODE:IFACE, e.g. ns-0:veth-0{bridges}")])
    counted = ["-c", str(count)] if count is not None else []
    if bridge is None:
        ns = namespace(lab, node, must_exist=False)
        device = next((iface.device for iface in ns.interfaces if iface.name == ifname), None)
        if device is None:
            known = ", ".join(iface.name for iface in ns.interfaces)
            raise TopologyError([Problem(target, "", f"node '{node}' has no interface '{ifname}' (its interfaces: {known})")])
        if ns.host is not None:  # packet by packet to ssh's stdout (-U), into `write` here
            options = [*(["-U", "-w", "-"] if write is not None else []), *counted]
            return placed(lab, ns, ["ip", "netns", "exec", ns.netns, "tcpdump", "-n", "-i", device, *options, *expression]), write
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise TopologyError([Problem("tcpdump", "", "not installed (it is the Debian package tcpdump)")])
    options = [*(["-w", str(write)] if write is not None else []), *counted]
    if bridge is not None:
        if not Path("/sys/class/net", bridge.device).exists():
            raise TopologyError([Problem(target, "", f"bridge '{bridge.device}' does not exist: is the lab up (`nsgen up`)?")])
        return [tcpdump, "-n", "-i", bridge.device, *options, *expression], None
    return ["ip", "netns", "exec", namespace(lab, node).netns, tcpdump, "-n", "-i", device, *options, *expression], None
