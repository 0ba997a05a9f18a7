"""Calling CNI plugins as runtimes do, and the pieces of a private containerd, for tests/test_cni.py."""

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REFERENCE_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class Net:
    """One test network: a bridge in `host` (a netns of the test, never the root one) and a range to give out;
    and an IPv6 one too when `subnet6` is set."""

    name: str
    bridge: str
    host: str
    data_dir: Path
    subnet: str = "10.201.0.0/24"
    gateway: str = "10.201.0.1"
    range_start: str = "10.201.0.10"
    range_end: str = "10.201.0.60"
    subnet6: str = ""
    gateway6: str = ""
    range_start6: str = ""
    range_end6: str = ""


@dataclass(frozen=True)
class Flavour:
    """A plugin under test: nsgen-bridge with its built-in store, or the reference bridge + host-local."""

    name: str
    plugin: Path
    cni_path: str

    def config(self, net: Net, version: str = "1.0.0") -> dict:
        """The network config (one plugin of a conflist) that a runtime sends on stdin."""
        common = {"cniVersion": version, "name": net.name, "bridge": net.bridge}
        if self.name == "nsgen-bridge":
            addresses = {"subnet": net.subnet, "gateway": net.gateway}
            if net.subnet6:
                addresses |= {"subnet6": net.subnet6, "gateway6": net.gateway6, "rangeStart6": net.range_start6,
                              "rangeEnd6": net.range_end6}
            return {**common, "type": "nsgen-bridge", **addresses, "rangeStart": net.range_start,
                    "rangeEnd": net.range_end}
        ranges = [[{"subnet": net.subnet, "gateway": net.gateway, "rangeStart": net.range_start,
                    "rangeEnd": net.range_end}]]
        if net.subnet6:
            ranges.append([{"subnet": net.subnet6, "gateway": net.gateway6, "rangeStart": net.range_start6,
                            "rangeEnd": net.range_end6}])
        ipam = {"type": "host-local", "dataDir": str(net.data_dir), "ranges": ranges}
        return {**common, "type": "bridge", "isGateway": True, "isDefaultGateway": True, "ipam": ipam}


@dataclass
class Reply:
    """What a plugin call gave back: exit status, stdout parsed (None when empty), stderr."""

    returncode: int
    stdout: str
    stderr: str
    result: dict | None = field(init=False)

    def __post_init__(self) -> None:
        # stdout is one JSON object or nothing: a stray line anywhere fails the parse
        self.result = json.loads(self.stdout) if self.stdout.strip() else None


def call(
    flavour: Flavour,
    net: Net,
    command: str,
    container_id: str = "",
    netns: str | None = None,
    ifname: str | None = "eth0",
    config: dict | str | None = None,
    cni_args: str = "",
    env: dict[str, str] | None = None,
) -> Reply:
    """Run the plugin inside the network's host netns with CNI_* in its environment and the config on stdin."""
    variables = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": f"/run/netns/{netns}" if netns else "",
        "CNI_IFNAME": ifname,
        "CNI_PATH": flavour.cni_path,
        "CNI_ARGS": cni_args,
        "NSGEN_CNI_DATA_DIR": str(net.data_dir),
        **(env or {}),
    }
    stdin = config if isinstance(config, str) else json.dumps(config or flavour.config(net))
    process = subprocess.run(
        ["ip", "netns", "exec", net.host, str(flavour.plugin)],
        input=stdin,
        env={key: value for key, value in variables.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Reply(process.returncode, process.stdout, process.stderr)


def chain(
    links: list[tuple[Flavour, dict]], net: Net, command: str, netns: str, version: str = "1.0.0",
    added: dict | None = None,
) -> dict | None:
    """A conflist's plugins run as libcni runs them, each with the network's name and version: ADD in order, each
    given the result before it (its last result is returned); CHECK in order and DEL in reverse, each given ADD's
    result (`added`). Every call must succeed."""
    order = links[::-1] if command == "DEL" else links
    result = added
    for flavour, plugin in order:
        config = {"cniVersion": version, "name": net.name, **plugin, **({"prevResult": result} if result else {})}
        reply = call(flavour, net, command, f"{netns}-id", netns, config=config)
        assert reply.returncode == 0, f"{plugin['type']} {command}: {reply.stdout}{reply.stderr}"
        if command == "ADD":
            result = reply.result
    return result


def shape(value: object) -> object:
    """The structure of a JSON value: keys and nesting kept, scalars replaced by their type name."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def macs(netns: str) -> dict[str, str]:
    """MAC address of every device in a netns (or the root one), read with `ip -j` as the pitfall requires."""
    command = ["ip", "-j", *(["-n", netns] if netns else []), "link", "show"]
    links = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {link["ifname"]: link["address"] for link in links}


# --- a private containerd -------------------------------------------------------------------

#: Run by `unshare -m` in the test's host netns: a private /run (containerd's state, runc's root, shim
#: sockets, fifos) and /var/lib (libcni's cache); /etc and /opt overlaid with writable layers in the work dir, so that the generated
#: install.sh can fill /etc/cni/net.d and /opt/cni/bin without touching the machine's; then containerd.
MOUNT_NAMESPACE_SCRIPT = """\
set -euo pipefail
work=$1
mount -t tmpfs nsgen-test-run /run
mount -t tmpfs nsgen-test-var-lib /var/lib  # libcni keeps its results cache in /var/lib/cni
for dir in etc opt; do
  mkdir -p "$work/$dir-upper" "$work/$dir-work"
  mount -t overlay "nsgen-test-$dir" -o "lowerdir=/$dir,upperdir=$work/$dir-upper,workdir=$work/$dir-work" "/$dir"
done
"$work/cni/install.sh" >&2
exec containerd --config "$work/containerd.toml"
"""


def containerd_config(work: Path) -> str:
    """containerd with everything under `work`, and no CRI (it would read /etc/cni/net.d on its own)."""
    return f"""version = 2
root = "{work}/root"
state = "{work}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{work}/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{work}/opt"
"""


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (containerd and its shims name the test's work dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def stop(pid: int, timeout: float = 10) -> None:
    """SIGTERM one process we started, then SIGKILL it if it is still there after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        pass
