"""Fault injection into generated scripts, with bash's own hooks: no script is edited, no command mocked.

`BASH_ENV` makes bash source a file before the script; that file sets a DEBUG trap (inherited by
functions: `set -T`) that counts the script's steps, the commands of its `lab_steps` (`ip …`, `ipN …`,
`set_sysctl …`, `stop_processes …`, `forward_rule …`, its root-namespace batch and its namespaces' batches), and, right before step `at`,
runs `action`. Actions: `kill -TERM $$` (a signal at that step), or
`__fault_break` (change the kernel so that the step fails for real: take the name it is about to
create, which must survive the script's rollback, or delete what it is about to change).
"""

import os
from pathlib import Path

HOOK = r"""
__fault_steps=0
__fault_hook() {
  [[ ${FUNCNAME[1]-} == lab_steps ]] || return 0
  case ${BASH_COMMAND} in
    "ip "* | ip[0-9]*" "* | "tc "* | "set_sysctl "* | "stop_processes "* | "forward_rule "* | "root_batch"* | "netns_batch "*) ;;
    *) return 0 ;;
  esac
  __fault_steps=$((__fault_steps + 1))
  echo "${__fault_steps}" >"${NSGEN_FAULT_COUNT}"  # as it goes: the script's own EXIT trap is its own
  if (( __fault_steps == NSGEN_FAULT_AT )); then eval "${NSGEN_FAULT_ACTION}"; fi
}
# plant KIND NAME: make an object the lab needs, as someone else would, and say so
__fault_plant() {
  if [[ $1 == netns ]]; then command ip netns add "$2"; else command ip link add "$2" type bridge; fi
  echo "$1 $2" >"${NSGEN_FAULT_PLANTED}"
}
__fault_break() {
  local words netns
  read -ra words <<<"${BASH_COMMAND}"
  case ${BASH_COMMAND} in
    "ip netns add "*) __fault_plant netns "${words[3]}" ;;
    "ip link add name "*" netns "*" type veth peer "*) command ip netns del "${words[6]}" ;;
    "ip link add name "*) __fault_plant link "${words[4]}" ;;
    "root_batch"*) __fault_plant "${NSGEN_FAULT_BATCH_KIND}" "${NSGEN_FAULT_BATCH_NAME}" ;;
    "netns_batch "*) command ip netns del "${words[1]}" ;;
    "set_sysctl "*) command ip netns del "${words[1]}" ;;
    "ip link set dev "*) command ip link del "${words[4]}" ;;
    "ip addr add "*) command ip link del "${words[-1]}" ;;
    ip[0-9]*)
      netns=$(declare -f "${words[0]}")
      netns=${netns#*ip netns exec }
      command ip netns del "${netns%% *}"
      ;;
  esac
}
set -T
trap __fault_hook DEBUG
echo 0 >"${NSGEN_FAULT_COUNT}"
"""


def environment(tmp_path: Path, at: int, action: str, batch_plant: tuple[str, str] = ("netns", "")) -> dict[str, str]:
    """The environment that runs `action` before step `at` (0: never) and counts the steps.

    `batch_plant` is what `__fault_break` takes before the root-namespace batch: (netns|link, name).
    """
    hook = tmp_path / "fault-hook.bash"
    hook.write_text(HOOK)
    planted = tmp_path / "fault-planted"
    planted.unlink(missing_ok=True)
    return {
        **os.environ,
        "BASH_ENV": str(hook),
        "NSGEN_FAULT_AT": str(at),
        "NSGEN_FAULT_ACTION": action,
        "NSGEN_FAULT_COUNT": str(tmp_path / "fault-steps"),
        "NSGEN_FAULT_PLANTED": str(planted),
        "NSGEN_FAULT_BATCH_KIND": batch_plant[0],
        "NSGEN_FAULT_BATCH_NAME": batch_plant[1],
    }


def steps_run(tmp_path: Path) -> int:
    """How many steps the last script run under `environment` reached."""
    return int((tmp_path / "fault-steps").read_text())


def planted(tmp_path: Path) -> tuple[str, str] | None:
    """The object `__fault_break` made in the lab's way, if it made one: (netns|link, name)."""
    path = tmp_path / "fault-planted"
    if not path.exists():
        return None
    kind, name = path.read_text().split()
    return kind, name
