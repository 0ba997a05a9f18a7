"""Rendering a lab into its files (one Jinja2 template per artifact) and writing them safely."""

import hashlib
import os
import shlex
import shutil
import tempfile
from functools import cache
from pathlib import Path

import jinja2

from nsgen import __version__, reachability, topology_file
from nsgen.model import IPInterface
from nsgen.sources import LoadedLab

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
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
    return env


def render(loaded: LoadedLab) -> dict[str, str]:
    """Every file of the lab, by name. The same lab always gives the same bytes."""
    topology = topology_file.dump(topology_file.document(loaded.lab))
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "checks": reachability.checks(loaded.lab),
    }
    env = _environment()
    files = {name: env.get_template(f"{name}.j2").render(context, script=name) for name in ARTIFACTS}
    files[TOPOLOGY] = topology
    return files


def _mode(name: str) -> int:
    return 0o755 if name in SCRIPTS else 0o644


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o100)


def write(files: dict[str, str], out_dir: Path) -> None:
    """Write `files` as the whole content of `out_dir`, replacing it only once everything is written."""
    out_dir = out_dir.absolute()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, text in files.items():
            path = staging / name
            path.write_text(text, encoding="utf-8")
            path.chmod(_mode(name))
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


def differences(files: dict[str, str], out_dir: Path) -> list[str]:
    """Names of the files in `out_dir` that differ from `files`: changed, missing or extra."""
    present = {p.name for p in out_dir.iterdir()} if out_dir.is_dir() else set()
    changed = [
        name
        for name, text in files.items()
        if name not in present
        or (out_dir / name).read_text(encoding="utf-8") != text
        or _is_executable(out_dir / name) != (name in SCRIPTS)
    ]
    return sorted(changed + sorted(present - files.keys()))
