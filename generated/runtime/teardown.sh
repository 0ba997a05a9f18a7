# --- nsgen runtime section teardown.sh: sha256 c0f6917aeadb7a539aa673475381cc3c2c8e8769db0a7df7c572325c951e8e34 ---
# teardown.sh's core, the same in every lab's teardown.sh of this nsgen version (`nsgen runtime
# teardown.sh` prints it, after every section a teardown.sh may carry). Safe to run again, and on
# a half-built lab: it runs the lab's steps above (lab_steps) for what of the lab is there, then
# the cleanup hooks of the sections before it (the lab's services' files, its iptables rules, the
# root sysctls it changed), then waits until the kernel has let go of the lab.

# --- options
#   --dry-run: print the commands this script would run, and change nothing

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0
while (( $# > 0 )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    *) refuse "unknown option '$1' (known: --dry-run)" ;;
  esac
  shift
done

# --- run as root (network namespaces need it): re-run through sudo when we are not (a dry
# run needs no root)
if (( ! dry_run )) && [[ ${EUID} -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then echo "${0##*/}: must run as root, and sudo was not found" >&2; exit 1; fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
if ! command -v ip >/dev/null 2>&1; then refuse "'ip' was not found: install iproute2"; fi

# --- in a dry run, `ip` (with what a batch feeds it) prints itself instead of running, as the changes
# of the sections above do: every change goes through them; what only reads says `command ip`
if (( dry_run )); then
  ip() {
    local line
    echo "ip$(printf ' %q' "$@")"
    if [[ " $* " == *" -batch - "* ]]; then
      while IFS= read -r line; do printf '    %s\n' "${line}"; done
    fi
  }
fi

# --- one setup, apply, demo or teardown of this lab at a time: a second one fails at once (flock).
# The lock file goes as the run that holds it ends, unless the lab is up (recorded): a run that
# locked the file just deleted opens and locks the new one
lock_file=/run/nsgen-${lab_key}.lock lock_held=0
: "${record_file:=}"  # where setup.sh, apply.sh and teardown.sh keep the record (demo.sh only reads it: record_clash)
lock_release() {
  if (( lock_held )) && [[ ! -e ${record_file} ]]; then rm -f "${lock_file}"; fi
}
trap lock_release EXIT
if (( ! dry_run )) && command -v flock >/dev/null 2>&1; then
  while :; do
    exec {lock_fd}>"${lock_file}"
    if ! flock -n "${lock_fd}"; then
      echo "${0##*/}: lab ${lab_name} is busy: another run holds ${lock_file}" >&2
      exit 3
    fi
    if [[ /dev/fd/${lock_fd} -ef ${lock_file} ]]; then break; fi
    exec {lock_fd}>&-
  done
  lock_held=1
fi

# --- await_gone: wait (10 s at most) until the kernel has let go of the lab's devices, but those
# someone else has (foreign): `ip netns del` returns before it has destroyed a namespace's devices,
# and a new setup.sh needs their names free. `remaining` lists what is left.
await_gone() {
  local dev
  for _ in {1..100}; do
    remaining=()
    for dev in "${lab_devices[@]}"; do
      if [[ -e /sys/class/net/${dev} && " ${foreign[*]-} " != *" link::${dev} "* ]]; then remaining+=("${dev}"); fi
    done
    if (( ${#remaining[@]} == 0 )); then return 0; fi
    sleep 0.1
  done
}

# --- delete_batch: the deletions (a here-doc) of what is there, in one `ip -batch`: the namespaces
# first, then the root-namespace devices (a veth end gone meanwhile with its peer is no error).
# /run/netns holds the named namespaces, /sys/class/net the root namespace's devices.
netns_deleted=0
devices_deleted=0
delete_batch() {
  local line netns_lines=() device_lines=()
  while IFS= read -r line; do
    case ${line} in
      "netns del "*) if [[ -e /run/netns/${line#netns del } ]]; then netns_lines+=("${line}"); fi ;;
      "link del dev "*) if [[ -e /sys/class/net/${line#link del dev } ]]; then device_lines+=("${line}"); fi ;;
      "#"*) ;;
      ?*) echo "${0##*/}: not a deletion: ${line}" >&2; exit 1 ;;
    esac
  done
  if (( ${#netns_lines[@]} > 0 )); then
    printf '%s\n' "${netns_lines[@]}" | ip -batch -
  fi
  if (( ${#device_lines[@]} > 0 )); then
    printf '%s\n' "${device_lines[@]}" | ip -force -batch - 2>/dev/null || true
  fi
  netns_deleted=$((netns_deleted + ${#netns_lines[@]}))
  devices_deleted=$((devices_deleted + ${#device_lines[@]}))
}

# --- hooks: lists of functions that the sections before this core (those the lab needs) add to
# (`declare` keeps them), run in order: cleanup_hooks once the lab's namespaces are gone.
declare -a cleanup_hooks
deleted_beyond=()  # what the cleanup hooks deleted beyond the lab's devices (`2 iptables rule(s)`)

# --- stopped by a signal, it says so: what it had not deleted yet is still there, and running it
# again deletes it (the record stays until then)
interrupted() {
  trap - "$1"
  echo "${0##*/}: ${2}: lab ${lab_name} may be partly deleted; run teardown.sh (nsgen down) again to finish" >&2
  exit "$3"
}
trap 'interrupted INT interrupted 130' INT
trap 'interrupted TERM terminated 143' TERM
trap 'interrupted HUP "hung up" 129' HUP

# --- record_file: where the lab's record is, the normalised topology it was built from (setup.sh
# and apply.sh write it, teardown.sh deletes it, a host's status.sh sends it to the controller)
record_file=/run/nsgen/${lab_key}.yaml
# --- record_clash: the record, where it names a lab, is this lab's (its top-level name and prefix,
# lab_recorded_as), else refused: another lab whose prefix and name make the same key (prefix rv-a- and
# lab bridge, prefix rv- and lab a-bridge) keeps its record and all else its key names
record_clash() {
  local recorded_as line
  if [[ ! -e ${record_file} ]]; then return 0; fi
  recorded_as=$(while IFS= read -r line; do case ${line} in 'name: '* | 'prefix: '*) echo "${line}" ;; esac; done <"${record_file}")
  if [[ -n ${recorded_as} && ${recorded_as} != "${lab_recorded_as}" ]]; then
    refuse "${record_file} records another lab (${recorded_as//$'\n'/, }), whose prefix and name make this one's key, ${lab_key}: nothing was changed (give one of them another --prefix; if that lab is gone, its teardown.sh deletes the record)"
  fi
}
record_clash

lab_steps
for hook in "${cleanup_hooks[@]}"; do "${hook}"; done
if (( ! dry_run )); then rm -f "${record_file}"; fi
if (( netns_deleted + devices_deleted + ${#deleted_beyond[@]} == 0 )); then
  echo "lab ${lab_name} was not up: nothing to delete"
  exit 0
fi

# --- the lab's devices gone before it says so (a new setup.sh needs their names free)
if (( ! dry_run )) && ! await_gone; then
  echo "${0##*/}: still present after 10 s: ${remaining[*]}" >&2
  exit 1
fi
if (( dry_run )); then
  echo "dry run: nothing was changed"
  exit 0
fi
beyond=''
if (( ${#deleted_beyond[@]} > 0 )); then printf -v beyond ', %s' "${deleted_beyond[@]}"; fi
echo "lab ${lab_name} is down: deleted ${netns_deleted} namespace(s), ${devices_deleted} root-namespace device(s)${beyond}"
