"""Running a multi-host lab's playbook through ansible-playbook: `nsgen up|verify|down|check|apply` (`status`:
run/host_states.py)."""

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from nsgen.render import lab_files, multihost
from nsgen.render.styles import Style
from nsgen.run import records
from nsgen.run.scripts import rendered_files
from nsgen.validate.sources import LoadedLab

#: The extra that installs Ansible, named when ansible-playbook is missing.
EXTRA = "pip install 'nsgen[ansible]'"
#: The playbook's tag that runs each host's script (`nsgen up` runs setup.sh's, ...).
TAGS = {
    "setup.sh": "up",
    "verify.sh": "verify",
    "teardown.sh": "down",
    "check.sh": "check",
    multihost.STATUS: "status",
    lab_files.APPLY: "apply",
}


class NoAnsible(Exception):
    """ansible-playbook is not installed."""

    def __str__(self) -> str:
        return f"a multi-host lab is deployed by Ansible, and ansible-playbook was not found: {EXTRA}"


def ansible_playbook() -> str | None:
    """ansible-playbook beside this Python (a virtual environment's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.is_file() else shutil.which("ansible-playbook")


def playbook_argv(playbook: str, script: str, dry_run: bool, extra: dict[str, str] | None = None) -> list[str]:
    argv = [playbook, "site.yml", "--tags", TAGS[script], *(["--extra-vars", "nsgen_args=--dry-run"] if dry_run else [])]
    return argv + (["--extra-vars", json.dumps(extra)] if extra else [])


def run(
    loaded: LoadedLab,
    script: str,
    style: Style,
    workdir: Path | None,
    dry_run: bool,
    files: dict[str, str] | None = None,
    setup_options: tuple[str, ...] = (),
) -> int:
    """`nsgen up|verify|down|apply` of a multi-host lab: its playbook (the deployment's `files`, default:
    the lab's own), with the tag of `script`, through ansible-playbook (which connects to the hosts as
    its environment and ansible.cfg say); `setup_options` (--force, --allow-forward) go to every host's
    setup.sh. A lab set up or changed is recorded on the controller (records.MULTIHOST_RECORDS), and its
    record removed when it is down."""
    playbook = ansible_playbook()
    if playbook is None:
        print(f"nsgen: {NoAnsible()}", file=sys.stderr)
        return 2
    files = files or multihost.render(loaded, style)
    with rendered_files(files, loaded.lab.name, workdir, multihost.executables(loaded.lab)) as lab_dir:
        extra = {"nsgen_setup_args": " ".join(setup_options)} if setup_options else None
        print(f"nsgen: {shlex.join(playbook_argv('ansible-playbook', script, dry_run, extra))}  (in {lab_dir})", flush=True)
        status = subprocess.run(playbook_argv(playbook, script, dry_run, extra), cwd=lab_dir, check=False).returncode
    if status == 0 and not dry_run and script in ("setup.sh", lab_files.APPLY):
        records.write_record(loaded.lab, lab_files.record_text(loaded.lab))
    if status == 0 and not dry_run and script == "teardown.sh":
        records.record_path(loaded.lab).unlink(missing_ok=True)
    return status
