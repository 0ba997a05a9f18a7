"""Rendering a lab into its files (one Jinja2 template per artifact) and writing them safely."""

import hashlib
import os
import shlex
import shutil
import tempfile
from enum import Enum
from collections.abc import Collection, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from nsgen import __version__, plan, reachability, styles, topology_file
from nsgen.model import Lab, VxlanPort
from nsgen.sources import LoadedLab
from nsgen.styles import Style

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "demo.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
TOPOLOGY = "topology.yaml"


def templates_dir() -> Path:
    """Templates ship inside the wheel as `nsgen/templates`; in a source checkout they sit beside the package."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nsgen templates not found next to {package}")


#: Arrays of names in the scripts wrap at this width.
ARRAY_WIDTH = 100


def _array(words: Iterable[str]) -> str:
    """Words quoted for a bash array, wrapped onto indented lines when they are many."""
    lines: list[str] = []
    for word in map(shlex.quote, words):
        if lines and len(lines[-1]) + len(word) < ARRAY_WIDTH:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines[0] if len(lines) == 1 else "".join(f"\n  {line}" for line in lines) + "\n" if lines else ""


def _facts(lab: Lab) -> dict[str, Any]:
    """What templates need to know about the lab as a whole, decided here rather than in Jinja."""
    root_addresses = [a for br in lab.bridges for a in br.addresses] + [a for i in lab.host for a in i.addresses]
    return {
        "root_networks": sorted({str(a.network) for a in root_addresses if a.network.prefixlen < a.max_prefixlen}),
        "fdb": any(isinstance(tunnel, VxlanPort) for tunnel in lab.tunnels),  # a multi-host part: `bridge fdb`
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
    env.filters["sh"] = shlex.join
    env.filters["array"] = _array
    env.filters["address"] = lambda address: plan.address_words(address)[0]
    env.filters["node_id"] = lambda name: "n_" + name.encode().hex()  # Mermaid ids: letters and digits only
    return env


def template(name: str) -> jinja2.Template:
    """A template by its path under templates/, with nsgen's filters (`q` quotes for the shell)."""
    return _environment().get_template(name)


#: The marker line that opens a script's runtime section.
RUNTIME_MARKER = "# === nsgen runtime: sha256 {} ==="


@cache
def runtime(script: str) -> str:
    """The runtime section of `script`, marker line included: the same bytes in every lab."""
    body = template(f"runtime/{script}.j2").render()
    return RUNTIME_MARKER.format(hashlib.sha256(body.encode()).hexdigest()) + "\n" + body


def _script_context(lab: Lab, script: str, style: Style) -> dict[str, Any]:
    """What one script prints of the plans: blocks of commands, or batches."""
    if script == "setup.sh":
        setup = plan.setup(lab)
        return {"blocks": styles.tutorial(lab, setup), "batches": styles.batched(lab, setup)}
    if script == "teardown.sh":
        return {"batches": styles.batched(lab, plan.teardown(lab))}
    if script == "verify.sh":
        return {"blocks": styles.tutorial(lab, plan.verify(lab))}
    if script == "demo.sh":
        setup = plan.setup(lab)
        return {
            "blocks": styles.demo(lab, (*setup, *plan.verify(lab), *plan.teardown(lab))),
            "setup_steps": len(setup),
        }
    if script == "README.md":
        return {"blocks": styles.tutorial(lab, plan.setup(lab), styles.README_COMMANDS_PER_STEP)}
    return {}


def render(loaded: LoadedLab, style: Style | str = Style.batched, topology: str | None = None) -> dict[str, str]:
    """Every file of the lab, by name. The same lab and style always give the same bytes. `topology`:
    the topology.yaml to write and hash instead of the lab's own (a multi-host lab's, in each host's part)."""
    topology = topology or topology_file.dump(topology_file.document(loaded.lab))
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "checks": reachability.checks(loaded.lab),
        "style": Style(style).value,
        **_facts(loaded.lab),
    }
    env = _environment()
    files = {}
    for name in ARTIFACTS:
        extra = _script_context(loaded.lab, name, Style(style))
        if name in SCRIPTS:
            extra["runtime"] = runtime(name)
        files[name] = env.get_template(f"{name}.j2").render(context, script=name, **extra)
    files[TOPOLOGY] = topology
    return files


class GraphFormat(str, Enum):
    """The diagram languages of `nsgen graph`."""

    mermaid = "mermaid"
    dot = "dot"


def graph(loaded: LoadedLab, fmt: GraphFormat) -> str:
    """The lab's topology as a Mermaid or Graphviz DOT diagram."""
    return template(f"graph.{GraphFormat(fmt).value}.j2").render(lab=loaded.lab)


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
