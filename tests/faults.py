"""Fault injection into generated scripts, with bash's own hooks: no script is edited, no command mocked.

`BASH_ENV` makes bash source a file before the script; that file sets a DEBUG trap that counts the
script's steps (its top-level `ip …`, `ipN …` and `set_sysctl …` commands) and, right before step
`at`, runs `action`: send the script a signal, or change the kernel so that the step fails for real.
"""

import os
from pathlib import Path

HOOK = r"""
__fault_steps=0
__fault_hook() {
  case ${BASH_COMMAND} in
    "ip "* | ip[0-9]*" "* | "set_sysctl "*) ;;
    *) return 0 ;;
  esac
  __fault_steps=$((__fault_steps + 1))
  if (( __fault_steps == NSGEN_FAULT_AT )); then eval "${NSGEN_FAULT_ACTION}"; fi
}
trap __fault_hook DEBUG
trap 'echo "${__fault_steps}" >"${NSGEN_FAULT_COUNT}"' EXIT
"""


def environment(tmp_path: Path, at: int, action: str) -> dict[str, str]:
    """The environment that runs `action` before step `at` (0: never) and counts the steps."""
    hook = tmp_path / "fault-hook.bash"
    hook.write_text(HOOK)
    return {
        **os.environ,
        "BASH_ENV": str(hook),
        "NSGEN_FAULT_AT": str(at),
        "NSGEN_FAULT_ACTION": action,
        "NSGEN_FAULT_COUNT": str(tmp_path / "fault-steps"),
    }


def steps_run(tmp_path: Path) -> int:
    """How many steps the last script run under `environment` reached."""
    return int((tmp_path / "fault-steps").read_text())
