# === nsgen runtime: sha256 68674042999f1c471ac21989ae34a3d2bbc9350461b34d37c530ba30b6c7347d ===
# teardown.sh's runtime, the same in every lab's teardown.sh of this nsgen version (`nsgen runtime
# teardown.sh` prints it). Safe to run again, and on a half-built lab: it runs the lab's steps
# above (lab_steps) for what of the lab is there, deletes the FORWARD rules setup.sh
# --allow-forward added for it, then waits until the kernel has let go of the lab.

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
tools=(ip)
for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then refuse "'${tool}' was not found: install iproute2"; fi
done

# --- in a dry run, `ip` (with what a batch feeds it) and `iptables` print themselves instead of
# running: every change this script makes goes through them; what only reads says `command ip`
if (( dry_run )); then
  ip() {
    local line
    echo "ip$(printf ' %q' "$@")"
    if [[ " $* " == *" -batch - "* ]]; then
      while IFS= read -r line; do printf '    %s\n' "${line}"; done
    fi
  }
  iptables() { echo "iptables$(printf ' %q' "$@")"; }
fi

# --- one setup, apply, demo or teardown of this lab at a time: a second one fails at once (flock)
if (( ! dry_run )) && command -v flock >/dev/null 2>&1; then
  exec {lock_fd}>"/run/nsgen-${lab_key}.lock"
  if ! flock -n "${lock_fd}"; then
    echo "${0##*/}: lab ${lab_name} is busy: another run holds /run/nsgen-${lab_key}.lock" >&2
    exit 3
  fi
fi

# --- pause SECONDS: sleep with bash alone (a read that times out on a pipe nobody writes to)
exec {pause_fd}<> <(:)
pause() { read -rt "$1" -u "${pause_fd}" || true; }

# --- stop_processes NETNS...: a process left in a lab namespace (a server started by hand, an
# `nsgen exec` still running) keeps it, and its devices, alive after `ip netns del`. Each one still
# there is named and stopped: TERM, up to 2 s of grace, then KILL (a dry run names them only). Found
# with bash alone, in one pass over /proc: a process's network namespace is the same file (`-ef`)
# as the lab's in /run/netns; one in ours (most) is passed over at once.
stop_processes() {
  local entry pid ns comm named=() pids round list
  for (( round = 0; round < 30; round++ )); do
    pids=()
    for entry in /proc/[0-9]*; do
      pid=${entry#/proc/}
      if [[ ${entry}/ns/net -ef /proc/$$/ns/net ]]; then continue; fi
      for ns in "$@"; do
        if [[ ${entry}/ns/net -ef /run/netns/${ns} ]]; then
          pids+=("${pid}")
          if (( round == 0 )); then
            comm='?'
            read -r comm <"${entry}/comm" || true
            named+=("${pid} (${comm}) in ${ns}")
          fi
          break
        fi
      done
    done
    if (( ${#pids[@]} == 0 )); then return 0; fi
    printf -v list '%s, ' "${named[@]}"
    if (( round == 0 && dry_run )); then echo "dry run: would stop ${list%, }"; return 0; fi
    if (( round == 0 )); then echo "stopping what still runs in the lab: ${list%, }"; fi
    if (( round == 0 )); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
    if (( round == 20 )); then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
    pause 0.1
  done
  echo "${0##*/}: still running in the lab after KILL: ${pids[*]}" >&2
}

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
    pause 0.1
  done
}

# --- root_batch: the deletions (a here-doc) of what is there, in one `ip -batch`: the namespaces
# first, then the root-namespace devices (a veth end gone meanwhile with its peer is no error).
# /run/netns holds the named namespaces, /sys/class/net the root namespace's devices.
netns_deleted=0
devices_deleted=0
root_batch() {
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

# --- delete_forward: the FORWARD rules carrying the lab's comment (setup.sh --allow-forward's), and
# only those: each rule `iptables -S FORWARD` prints with it, deleted by the same words (iptables-nft
# prints the comment in double quotes, legacy iptables bare)
forward_deleted=0
delete_forward() {
  local words i ours
  if ! command -v iptables >/dev/null 2>&1; then return; fi
  while read -ra words; do
    ours=0
    for (( i = 1; i < ${#words[@]}; i++ )); do
      if [[ ${words[i]} == '"'*'"' ]]; then words[i]=${words[i]:1:-1}; fi
      if [[ ${words[i - 1]} == --comment && ${words[i]} == "nsgen:${lab_key}" ]]; then ours=1; fi
    done
    if [[ ${words[0]-} != -A ]] || (( ! ours )); then continue; fi
    words[0]=-D
    if (( dry_run )); then
      printf 'iptables -w'
      printf ' %q' "${words[@]}"
      printf '\n'
    else
      command iptables -w "${words[@]}"
    fi
    forward_deleted=$((forward_deleted + 1))
  done < <(command iptables -w -S FORWARD 2>/dev/null)
}

# --- the lab's record (/run/nsgen/LAB_KEY.yaml, which setup.sh wrote) goes with it
record_file=/run/nsgen/${lab_key}.yaml

lab_steps
delete_forward
if (( ! dry_run )); then rm -f "${record_file}"; fi
if (( netns_deleted + devices_deleted + forward_deleted == 0 )); then
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
forward_rules=''
if (( forward_deleted > 0 )); then forward_rules=", ${forward_deleted} FORWARD rule(s)"; fi
echo "lab ${lab_name} is down: deleted ${netns_deleted} namespace(s), ${devices_deleted} root-namespace device(s)${forward_rules}"
