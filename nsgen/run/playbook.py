"""Running a multi-host lab's playbook: `nsgen up|verify|down` through ansible-playbook."""

import shutil
import subprocess
import sys
from pathlib import Path

from nsgen.render import multihost
from nsgen.render.styles import Style
from nsgen.run.scripts import rendered_files
from nsgen.validate.sources import LoadedLab

#: The extra that installs Ansible, named when ansible-playbook is missing.
EXTRA = "pip install 'nsgen[ansible]'"
#: `nsgen up|verify|down` of a multi-host lab: the playbook's tag of each.
TAGS = {"setup.sh": "up", "verify.sh": "verify", "teardown.sh": "down"}


def ansible_playbook() -> str | None:
    """ansible-playbook beside this Python (a virtual environment's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.is_file() else shutil.which("ansible-playbook")


def playbook_argv(playbook: str, script: str, dry_run: bool) -> list[str]:
    argv = [playbook, "site.yml", "--tags", TAGS[script]]
    return argv + (["--extra-vars", "nsgen_args=--dry-run"] if dry_run else [])


def run(loaded: LoadedLab, script: str, style: Style, workdir: Path | None, dry_run: bool) -> int:
    """`nsgen up|verify|down` of a multi-host lab: its playbook, with the tag of `script`, through
    ansible-playbook (which connects to the hosts as its environment and ansible.cfg say)."""
    playbook = ansible_playbook()
    if playbook is None:
        print(f"nsgen: a multi-host lab is deployed by Ansible, and ansible-playbook was not found: {EXTRA}", file=sys.stderr)
        return 2
    files = multihost.render(loaded, style)
    with rendered_files(files, loaded.lab.name, workdir, multihost.executables(loaded.lab)) as lab_dir:
        print(f"nsgen: {' '.join(playbook_argv('ansible-playbook', script, dry_run))}  (in {lab_dir})", flush=True)
        return subprocess.run(playbook_argv(playbook, script, dry_run), cwd=lab_dir, check=False).returncode
