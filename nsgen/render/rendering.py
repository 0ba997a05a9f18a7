"""Rendering a lab into its files (one Jinja2 template per artifact) and writing them safely."""

import hashlib
import marshal
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from nsgen import __version__
from nsgen.plan import changes, reachability
from nsgen.plan import declared as drift
from nsgen.plan import lab_plans as plan
from nsgen.render import styles
from nsgen.render.styles import Style
from nsgen.topology import yaml_file
from nsgen.topology.model import Lab, VxlanPort
from nsgen.validate.sources import LoadedLab

#: Artifacts rendered from templates of the same name plus `.j2`; the executable ones are scripts.
SCRIPTS = ("setup.sh", "teardown.sh", "verify.sh", "demo.sh")
ARTIFACTS = (*SCRIPTS, "helpers.sh", "README.md")
TOPOLOGY = "topology.yaml"


def templates_dir() -> Path:
    """Templates ship inside the wheel as `nsgen/templates`; in a source checkout they sit beside the package."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nsgen templates not found next to {package}")


#: Arrays of names in the scripts wrap at this width.
ARRAY_WIDTH = 100


#: shlex.quote, remembered: a lab's scripts quote the same few words thousands of times.
_quoted = cache(shlex.quote)


def _array(words: Iterable[str]) -> str:
    """Words quoted for a bash array, wrapped onto indented lines when they are many."""
    lines: list[str] = []
    for word in map(_quoted, words):
        if lines and len(lines[-1]) + len(word) < ARRAY_WIDTH:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) <= 1:
        return "".join(lines)
    return "".join(f"\n  {line}" for line in lines) + "\n"


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
    env.filters["sh"] = lambda words: " ".join(map(_quoted, words))
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


#: The README lists at most this many namespaces and links, and draws no diagram of more.
README_ROWS = 100


@dataclass(frozen=True)
class _Plans:
    """The lab's plans, computed once for every file that prints them."""

    setup: plan.Plan
    teardown: plan.Plan
    verify: plan.Plan


def _script_context(lab: Lab, script: str, plans: _Plans, style: Style) -> dict[str, Any]:
    """What one file prints of the plans: blocks of commands, or batches."""
    if script == "setup.sh" and style is Style.tutorial:
        return {"blocks": styles.tutorial(lab, plans.setup)}
    if script == "setup.sh":
        return {"batches": styles.batched(lab, plans.setup)}
    if script == "teardown.sh":
        return {"batches": styles.batched(lab, plans.teardown)}
    if script == "verify.sh":
        return {"blocks": styles.tutorial(lab, plans.verify), "expect_lines": drift.shell_lines(drift.declared(lab))}
    if script == "demo.sh":
        return {
            "blocks": styles.demo(lab, (*plans.setup, *plans.verify, *plans.teardown)),
            "setup_steps": len(plans.setup),
        }
    if script == "README.md":
        aliases = [ns.alias for ns in lab.namespaces]
        return {
            "blocks": styles.tutorial(lab, plans.setup, styles.README_COMMANDS_PER_STEP),
            "readme_rows": README_ROWS,
            "aliases_summary": ", ".join(aliases) if len(aliases) <= 4 else f"{aliases[0]} … {aliases[-1]}",
        }
    return {}


def record_text(lab: Lab) -> str:
    """What setup.sh and apply.sh record under /run/nsgen: the lab's normalised topology."""
    return yaml_file.dump(yaml_file.document(lab))


def render(loaded: LoadedLab, style: Style | str = Style.batched, topology: str | None = None) -> dict[str, str]:
    """Every file of the lab, by name. The same lab and style always give the same bytes. `topology`:
    the topology.yaml to write and hash instead of the lab's own (a multi-host lab's, in each host's part)."""
    topology = topology or record_text(loaded.lab)
    checks = reachability.checks(loaded.lab)
    plans = _Plans(plan.setup(loaded.lab), plan.teardown(loaded.lab), plan.verify(loaded.lab, checks))
    context = {
        "lab": loaded.lab,
        "origin": loaded.origin,
        "version": __version__,
        "digest": hashlib.sha256(topology.encode()).hexdigest(),
        "record_text": topology,  # what setup.sh records under /run/nsgen
        "checks": checks,
        "style": Style(style).value,
        **_facts(loaded.lab),
    }
    env = _environment()

    def artifact(name: str) -> str:
        extra = _script_context(loaded.lab, name, plans, Style(style))
        if name in SCRIPTS:
            extra["runtime"] = runtime(name)
        return env.get_template(f"{name}.j2").render(context, script=name, **extra)

    if len(loaded.lab.namespaces) > PARALLEL_NAMESPACES:
        files = _in_two_processes(artifact, ARTIFACTS, FORKED_ARTIFACTS)
    else:
        files = {name: artifact(name) for name in ARTIFACTS}
    files[TOPOLOGY] = topology
    return files


#: A lab of more namespaces than this renders its files in two processes: FORKED_ARTIFACTS (about
#: half the work) in a forked child, the others here, at the same time.
PARALLEL_NAMESPACES = 500
FORKED_ARTIFACTS = ("demo.sh", "helpers.sh", "teardown.sh", "README.md")


def _in_two_processes(make: Callable[[str], str], names: Iterable[str], forked: Collection[str]) -> dict[str, str]:
    """`make(name)` for each of `names`: those in `forked` by a forked child, which sends them back
    through a pipe, while this process makes the rest. Without fork (or with threads running, which
    a fork would not copy) all are made here, and so are the child's if it fails."""
    names = list(names)
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return {name: make(name) for name in names}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its texts, marshalled into the pipe, then out without any cleanup of the parent's
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(marshal.dumps({name: make(name) for name in forked}))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    pipe = os.fdopen(read_end, "rb")
    try:
        files = {name: make(name) for name in names if name not in forked}
        sent = pipe.read()
    finally:  # also when making ours failed: a child still writing gets EPIPE and ends
        pipe.close()
        _, status = os.waitpid(pid, 0)
    files |= marshal.loads(sent) if status == 0 else {name: make(name) for name in forked}  # noqa: S302 - our child's
    return {name: files[name] for name in names}


APPLY = "apply.sh"


def render_apply(old: Lab, loaded: LoadedLab, style: Style | str = Style.batched, lab_files: bool = True) -> dict[str, str]:
    """The new lab's files (without `lab_files`: its topology.yaml only) and its apply.sh: the
    change from the running `old` to it (nsgen.plan.changes)."""
    forward = changes.diff(old, loaded.lab)
    files = render(loaded, style) if lab_files else {TOPOLOGY: record_text(loaded.lab)}
    old_text = record_text(old)
    old_facts = drift.declared(old, forward.touched, changes.touched_devices(forward.plan))
    files[APPLY] = template(f"{APPLY}.j2").render(
        lab=loaded.lab,
        origin=loaded.origin,
        version=__version__,
        digest=hashlib.sha256(files[TOPOLOGY].encode()).hexdigest(),
        script=APPLY,
        runtime=runtime(APPLY),
        changes=forward.changes,
        blocks=changes.blocks(forward.plan),
        undo_blocks=changes.blocks(changes.undo(forward).plan),
        old_expect_lines=drift.shell_lines(old_facts, some_root_devices=True),
        old_record_text=old_text,
        old_digest=hashlib.sha256(old_text.encode()).hexdigest(),
        record_text=files[TOPOLOGY],
    )
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
