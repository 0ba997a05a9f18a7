"""Rendering a lab into its files (one Jinja2 template per artifact) and writing them safely."""

import hashlib
import os
import shlex
import shutil
import tempfile
from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from nsgen import __version__, reachability, topology_file
from nsgen.model import IPInterface, Lab
from nsgen.sources import LoadedLab

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "demo.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
GRAPH_FORMATS = ("mermaid", "dot")
TOPOLOGY = "topology.yaml"


def templates_dir() -> Path:
    """Templates ship inside the wheel as `nsgen/templates`; in a source checkout they sit beside the package."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nsgen templates not found next to {package}")


def _address(address: IPInterface) -> str:
    """An address as the guide writes it: bare for a single host (/32, /128), else with its prefix."""
    return str(address.ip) if address.network.prefixlen == address.max_prefixlen else address.with_prefixlen


def _address_flags(address: IPInterface) -> str:
    """`ip addr add` flags: IPv6 addresses skip duplicate address detection (validation made them unique)."""
    return " nodad" if address.version == 6 else ""


#: Labs with more namespaces than this print progress while they are set up.
PROGRESS_MIN = 50


def _progress_marks(count: int) -> dict[int, int]:
    """The namespace indexes (1-based) at which setup reports progress: each 10 % step, once."""
    if count <= PROGRESS_MIN:
        return {}
    return {max(1, count * percent // 100): percent for percent in range(10, 101, 10)}


def _facts(lab: Lab) -> dict[str, Any]:
    """What templates need to know about the lab as a whole, decided here rather than in Jinja."""
    interfaces = [(ns, iface) for ns in lab.namespaces for iface in ns.interfaces] + [(None, i) for i in lab.host]
    addresses = [a for _, iface in interfaces for a in iface.addresses]
    root_addresses = [a for br in lab.bridges for a in br.addresses] + [a for i in lab.host for a in i.addresses]
    marks = _progress_marks(len(lab.namespaces))
    return {
        "has_sysctls": any(ns.sysctls for ns in lab.namespaces),
        "addressed": bool(addresses),
        "ipv4_only": not any(a.version == 6 for a in addresses + root_addresses),
        "root_networks": sorted({str(a.network) for a in root_addresses if a.network.prefixlen < a.max_prefixlen}),
        "root_veths": [end.device for link in lab.links for end in link.creation_order if end.netns is None],
        "has_progress": bool(marks),
        "progress_marks": marks,
        "tuned": [(ns, iface) for ns, iface in interfaces if iface.mtu is not None or iface.mac is not None],
        "sampled": reachability.sampled(lab),
        "sampled_peers": reachability.SAMPLED_PEERS,
    }


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # bash's `${#array[@]}` would open a Jinja comment: templates write comments as {## … ##}
        comment_start_string="{##",
        comment_end_string="##}",
    )
    env.filters["q"] = lambda value: shlex.quote(str(value))
    env.filters["address"] = _address
    env.filters["address_flags"] = _address_flags
    env.filters["node_id"] = lambda name: "n_" + name.encode().hex()  # Mermaid ids: letters and digits only
    return env


def template(name: str) -> jinja2.Template:
    """A template by its path under templates/, with nsgen's filters (`q` quotes for the shell)."""
    return _environment().get_template(name)


#: How setup.sh is written: `batched` (fast at any size) or `tutorial` (the guide's command per line).
STYLES = ("batched", "tutorial")


def render(loaded: LoadedLab, style: str = STYLES[0]) -> dict[str, str]:
    """Every file of the lab, by name. The same lab and style always give the same bytes."""
    topology = topology_file.dump(topology_file.document(loaded.lab))
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "checks": reachability.checks(loaded.lab),
        "style": style,
        **_facts(loaded.lab),
    }
    env = _environment()
    files = {name: env.get_template(f"{name}.j2").render(context, script=name) for name in ARTIFACTS}
    files[TOPOLOGY] = topology
    return files


def graph(loaded: LoadedLab, fmt: str) -> str:
    """The lab's topology as a Mermaid or Graphviz DOT diagram (`fmt` is one of GRAPH_FORMATS)."""
    return template(f"graph.{fmt}.j2").render(lab=loaded.lab)


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o100)


def write(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> None:
    """Write `files` (relative paths) as the whole content of `out_dir`, replacing it only once all are written."""
    out_dir = out_dir.absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            path = staging / name
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o755 if name in executables else 0o644)
        staging.chmod(0o755)
        if out_dir.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            os.rename(out_dir, retired / "lab")
            os.rename(staging, out_dir)
            shutil.rmtree(retired)
        else:
            os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def differences(files: dict[str, str], out_dir: Path, executables: Collection[str] = SCRIPTS) -> list[str]:
    """Relative paths of the files in `out_dir` that differ from `files`: changed, missing or extra."""
    files_there = out_dir.rglob("*") if out_dir.is_dir() else ()
    present = {path.relative_to(out_dir).as_posix() for path in files_there if path.is_file()}
    changed = [
        name
        for name, text in files.items()
        if name not in present
        or (out_dir / name).read_text(encoding="utf-8") != text
        or _is_executable(out_dir / name) != (name in executables)
    ]
    return sorted(changed + sorted(present - files.keys()))
