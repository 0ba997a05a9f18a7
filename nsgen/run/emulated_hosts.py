"""Emulated hosts on this machine: each its own network namespace and private /run, joined by an underlay switch.

A host `PREFIXhN` is a named network namespace plus a mount namespace in which a tmpfs hides the machine's
/run, so the host's `ip netns`, locks and daemons' files stay its own. A mount namespace lasts only while a
process is in it: each host has a holder (`sleep infinity` started under `unshare --mount`), and commands
enter the host with `nsenter --target HOLDER --net --mount`. The underlay is a bridge inside a namespace of
its own, `PREFIXsw`, with a veth to each host's `eth0`; addresses come from 198.51.100.0/24 (TEST-NET-2:
the machine's own eth0 may sit in TEST-NET-1) and
exist only inside these namespaces. Nothing is made in the machine's root namespace.

The switch namespace also holds the controller's address (CONTROLLER, on the underlay bridge): the machine's
root namespace has no route to the underlay, so Ansible (or ssh) runs in the switch namespace, network only
(`nsenter --net=/run/netns/PREFIXsw ...`: it still sees the machine's files). `start_sshd` starts an sshd in
a host, listening only on its underlay address, with its own host key and a throwaway key for root, its
files under a state directory (`StrictModes no`: they live under /tmp), its PID file in the host's /run.
"""

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

UNDERLAY = ipaddress.IPv4Network("198.51.100.0/24")
SWITCH = "sw"
#: The controller's address, on the switch's underlay bridge: Ansible runs there.
CONTROLLER = ipaddress.IPv4Interface((int(UNDERLAY.broadcast_address) - 1, UNDERLAY.prefixlen))
#: The most hosts an underlay of UNDERLAY's size holds (.1 to .253; .254 is the controller's).
MAX_HOSTS = UNDERLAY.num_addresses - 3
#: Where `nsgen hosts up` records the hosts of a prefix (the machine's /run), for `hosts run` and `hosts down`.
RECORDS = Path("/run/nsgen-hosts")
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Host:
    """One emulated host: its network namespace, underlay address and the PID holding its mount namespace."""

    name: str
    address: ipaddress.IPv4Interface
    holder: int


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def create(prefix: str, count: int) -> list[Host]:
    """Make `count` hosts `PREFIXh1`.. on the underlay switch `PREFIXsw`; on failure, remove what was made."""
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"emulated hosts: {count} is not between 1 and {MAX_HOSTS}")
    hosts: list[Host] = []
    try:
        switch = prefix + SWITCH
        _ip("netns", "add", switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "addr", "add", str(CONTROLLER), "dev", "br0")
        _ip("-n", switch, "link", "set", "br0", "up")
        for index in range(1, count + 1):
            hosts.append(_host(prefix, switch, index))
    except BaseException:
        destroy(prefix)
        raise
    return hosts


def _host(prefix: str, switch: str, index: int) -> Host:
    name = f"{prefix}h{index}"
    address = ipaddress.IPv4Interface((int(UNDERLAY.network_address) + index, UNDERLAY.prefixlen))
    _ip("netns", "add", name)
    _ip("-n", switch, "link", "add", f"h{index}", "type", "veth", "peer", "name", "eth0", "netns", name)
    _ip("-n", switch, "link", "set", f"h{index}", "master", "br0", "up")
    _ip("-n", name, "link", "set", "lo", "up")
    _ip("-n", name, "addr", "add", str(address), "dev", "eth0")
    _ip("-n", name, "link", "set", "eth0", "up")
    holder = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{name}", "unshare", "--mount", "--propagation", "private",
         "sleep", "infinity"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # it outlives `nsgen hosts up`: it must not hold its caller's pipes open
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the holder outlives our process group's signals; destroy() ends it
    )
    host = Host(name, address, _until_unshared(holder))
    # its own /run, and its own /sys: a sysfs mounted in the host shows the host's devices (/sys/class/net),
    # not the machine's, as `ip netns exec` remounts it
    mounts = (
        ["mount", "-t", "tmpfs", "tmpfs", "/run"],
        ["mkdir", "/run/netns", "/run/sshd"],
        ["mount", "-t", "sysfs", "sysfs", "/sys"],
    )
    for command in mounts:
        subprocess.run(argv(host, command), check=True, capture_output=True, text=True)
    return host


def _until_unshared(holder: subprocess.Popen[bytes]) -> int:
    """The holder's PID once it runs in a mount namespace of its own (nsenter and unshare exec in place)."""
    mine = Path("/proc/self/ns/mnt").resolve()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            theirs = Path(f"/proc/{holder.pid}/ns/mnt").resolve()
            if theirs != mine and Path(f"/proc/{holder.pid}/cmdline").read_bytes().startswith(b"sleep\0"):
                return holder.pid
        except OSError:
            pass
        if holder.poll() is not None:
            raise RuntimeError(f"emulated hosts: the holder exited with status {holder.returncode}")
        time.sleep(0.01)
    raise RuntimeError("emulated hosts: the holder did not start in time")


def argv(host: Host, command: list[str]) -> list[str]:
    """`command` run inside `host`: its network namespace and its mount namespace (private /run)."""
    return ["nsenter", f"--target={host.holder}", "--net", "--mount", "--", *command]


def run(host: Host, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run `command` inside `host`, stdin closed, capturing its output as text."""
    return subprocess.run(
        argv(host, command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )


def names(prefix: str) -> list[str]:
    """The machine's namespaces of the hosts and switch of `prefix`."""
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    ours = {f"{prefix}{SWITCH}"}
    return [
        name
        for name in (line.split()[0] for line in listed.splitlines() if line.strip())
        if name in ours or (name.startswith(f"{prefix}h") and name[len(prefix) + 1 :].isdigit())
    ]


def destroy(prefix: str) -> None:
    """End every process in the hosts of `prefix` (first what runs in the namespaces made inside a host: a
    lab's services would keep those alive), then delete their namespaces."""
    hosts = names(prefix)
    for pid in [pid for name in hosts if name != switch_netns(prefix) for pid in _inner_processes(name)]:
        _kill(pid)
    for name in hosts:
        for pid in _processes(name):
            _kill(pid)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _processes(netns: str, enter: list[str] | None = None) -> list[int]:
    """The processes in the named network namespace `netns` (seen through `enter`: a host's)."""
    listed = subprocess.run([*(enter or []), "ip", "netns", "pids", netns], capture_output=True, text=True, check=False)
    return [int(pid) for pid in listed.stdout.split()]


def _inner_processes(name: str) -> list[int]:
    """The processes in the namespaces made inside host `name` (in its private /run/netns: a lab's), seen
    through one of the host's own processes (its holder, its sshd): only one in a mount namespace other than
    ours, whose /run/netns is the host's (a process there with this machine's files sees the machine's)."""
    mine = os.stat("/proc/self/ns/mnt").st_ino
    for pid in _processes(name):
        try:
            if os.stat(f"/proc/{pid}/ns/mnt").st_ino == mine:
                continue
        except OSError:
            continue
        enter = ["nsenter", f"--target={pid}", "--net", "--mount", "--"]
        listed = subprocess.run([*enter, "ip", "netns", "list"], capture_output=True, text=True, check=False)
        if listed.returncode == 0:
            return [p for line in listed.stdout.splitlines() if line.strip() for p in _processes(line.split()[0], enter)]
    return []


def _kill(pid: int) -> None:
    """SIGKILL `pid` and wait until it is gone: reaped when it is our child, else dead or a zombie."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:  # a zombie holds no namespace any more
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def switch_netns(prefix: str) -> str:
    """The switch namespace of `prefix`: the controller's, from which every host's underlay address is reached."""
    return prefix + SWITCH


def controller_argv(prefix: str, command: list[str]) -> list[str]:
    """`command` run in the controller's network namespace (the switch's), with the machine's files."""
    return ["nsenter", f"--net=/run/netns/{switch_netns(prefix)}", "--", *command]


@dataclass(frozen=True)
class Access:
    """How a controller reaches the hosts over SSH: root, a throwaway key, the hosts' keys known."""

    state_dir: Path

    @property
    def key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    def ansible_env(self) -> dict[str, str]:
        """Ansible's environment for these hosts (the inventory names none of it)."""
        return {
            "ANSIBLE_REMOTE_USER": "root",
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.key),
            "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={self.known_hosts} -o IdentitiesOnly=yes",
            # every set of emulated hosts has the same addresses: its own ControlPersist sockets
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.state_dir / "cp"),
            # they share this machine's CPUs: on a busy machine an sshd answers later than Ansible's 10 s
            "ANSIBLE_TIMEOUT": "30",
        }


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nsgen-emulated", "-f", str(path)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)


def start_sshd(host: Host, access: Access) -> None:
    """Start an sshd inside `host` on its underlay address; root logs in with `access`'s key."""
    if not Path(SSHD).exists():
        raise RuntimeError("emulated hosts: sshd was not found: apt-get install -y openssh-server")
    access.state_dir.mkdir(parents=True, exist_ok=True)
    if not access.key.exists():
        _keygen(access.key)
    own = access.state_dir / host.name
    own.mkdir(exist_ok=True)
    host_key = own / "ssh_host_ed25519_key"
    if not host_key.exists():
        _keygen(host_key)
    authorized = own / "authorized_keys"
    shutil.copyfile(access.key.with_suffix(".pub"), authorized)
    config = own / "sshd_config"
    config.write_text(
        f"ListenAddress {host.address.ip}\n"
        f"HostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PidFile /run/sshd.pid\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "Subsystem sftp internal-sftp\n"
        "MaxSessions 100\n"
        "MaxStartups 100:30:200\n"
    )
    started = run(host, [SSHD, "-f", str(config), "-E", str(own / "sshd.log")])
    if started.returncode != 0:
        raise RuntimeError(f"emulated hosts: sshd did not start in {host.name}: {started.stderr.strip()}")
    public = host_key.with_suffix(".pub").read_text().split()
    known = access.known_hosts.read_text() if access.known_hosts.exists() else ""
    access.known_hosts.write_text(known + f"{host.address.ip} {public[0]} {public[1]}\n")
    deadline = time.monotonic() + 5
    while run(host, ["cat", "/run/sshd.pid"]).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.02)


def stop_sshd(host: Host) -> None:
    """Stop the sshd of `host` as a host going down would: the listener (its PID file is in the host's
    private /run) and every session (a controller's ControlPersist connection too)."""
    pids = subprocess.run(["ip", "netns", "pids", host.name], capture_output=True, text=True, check=False).stdout
    for pid in map(int, pids.split()):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("sshd"):
            _kill(pid)


def record_path(prefix: str) -> Path:
    return RECORDS / f"{prefix}.json"


def up(prefix: str, count: int, state_dir: Path | None = None) -> tuple[list[Host], Access]:
    """`count` hosts with an sshd each, recorded under RECORDS for `down` and `found`."""
    if record_path(prefix).exists() or names(prefix):
        raise RuntimeError(f"emulated hosts of prefix '{prefix}' exist already (nsgen hosts down --prefix {prefix})")
    access = Access(state_dir or Path(tempfile.mkdtemp(prefix=f"nsgen-hosts-{prefix}")))
    hosts = create(prefix, count)
    try:
        for host in hosts:
            start_sshd(host, access)
        RECORDS.mkdir(parents=True, exist_ok=True)
        record = {
            "state_dir": str(access.state_dir),
            "hosts": [{"name": h.name, "address": str(h.address), "holder": h.holder} for h in hosts],
        }
        record_path(prefix).write_text(json.dumps(record, indent=2) + "\n")
    except BaseException:
        down(prefix, access)
        raise
    return hosts, access


def found(prefix: str) -> tuple[list[Host], Access] | None:
    """The hosts of `prefix` and their access, as `up` recorded them; None if there is no record."""
    try:
        record = json.loads(record_path(prefix).read_text())
    except OSError:
        return None
    hosts = [Host(h["name"], ipaddress.IPv4Interface(h["address"]), h["holder"]) for h in record["hosts"]]
    return hosts, Access(Path(record["state_dir"]))


def down(prefix: str, access: Access | None = None) -> None:
    """Destroy the hosts of `prefix` (their sshd and every process in them), their files and their record."""
    if access is None:
        recorded = found(prefix)
        access = recorded[1] if recorded else None
    destroy(prefix)
    if access is not None:
        shutil.rmtree(access.state_dir, ignore_errors=True)
    record_path(prefix).unlink(missing_ok=True)
