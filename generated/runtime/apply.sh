# === nsgen runtime: sha256 5bf5a6168c70bc02e62bca4450bba12e3ed40c7fdc68bf6ef52110c65a875ba4 ===
# apply.sh's runtime, the same in every lab's apply.sh of this nsgen version (`nsgen runtime
# apply.sh` prints it): it checks that the running lab is the old topology (its record, and the
# declared state of what the change touches: lab_expect_old), locks, runs the change (lab_steps),
# and records the new topology. On a failed step or a signal it runs the rollback (lab_undo_steps)
# and leaves the old topology and its record.

# --- options
#   --dry-run: print the commands this script would run, and change nothing
#   --force: apply the change even where the running lab is not what its record says

script_args=("$@")
dry_run=0 force=0
while (( $# > 0 )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --force) force=1 ;;
    *) echo "${0##*/}: unknown option '$1' (known: --dry-run, --force)" >&2; exit 2 ;;
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
  if ! command -v "${tool}" >/dev/null 2>&1; then echo "${0##*/}: '${tool}' was not found: install iproute2" >&2; exit 2; fi
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

# --- expect_*: the lab's declared state (lab_expect above), checked with `ip -o` alone.
# `expect_netns NETNS NODE` (or `expect_root all`, `expect_root only DEV...`) reads where the next lines look, once (the root
# namespace: all of it, or DEV... only); each line then
# checks one object. Each difference is one line in `drift` (`ns-0: route default via 10.0.0.1:
# missing`); a missing namespace or device is one line, what it holds is not checked.
drift=()
expect_node='' expect_netns_name='' expect_skip=0 expect_routes6=0
declare -A have_flags=() have_mtu=() have_master=() have_mac=() have_addr=() gone_dev=()
have_routes=()
expect_read() {
  local line dev
  have_flags=() have_mtu=() have_master=() have_mac=() have_addr=() gone_dev=() have_routes=()
  expect_routes6=0
  while IFS= read -r line; do
    if [[ ${line} =~ ^[0-9]+:\ ([^:@\ ]+)(@[^:]*)?:\ \<([^>]*)\>\ mtu\ ([0-9]+) ]]; then
      dev=${BASH_REMATCH[1]}
      have_flags[${dev}]=",${BASH_REMATCH[3]},"
      have_mtu[${dev}]=${BASH_REMATCH[4]}
      if [[ ${line} =~ \ master\ ([^ ]+) ]]; then have_master[${dev}]=${BASH_REMATCH[1]}; fi
      if [[ ${line} =~ link/ether\ ([0-9a-f:]+) ]]; then have_mac[${dev}]=${BASH_REMATCH[1]}; fi
    elif [[ ${line} =~ ^[0-9]+:\ ([^\ ]+)\ +inet6?\ ([^\ ]+) ]]; then
      have_addr["${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"]=1
    elif [[ -n ${line} ]]; then
      have_routes+=("${line}")
    fi
  done < <(expect_commands "$@" | command ip ${expect_netns_name:+-n "${expect_netns_name}"} -o -force -batch - 2>/dev/null)
}
# what expect_read asks `ip -batch`: everything, or (DEV...) those devices only
expect_commands() {
  local dev
  if (( $# == 0 )); then printf 'addr show\nroute show\nlink show\n'; return 0; fi
  # every `addr show` first: in a batch, one after a `link show` shows links
  for dev in "$@"; do printf 'addr show dev %s\n' "${dev}"; done
  for dev in "$@"; do printf 'link show dev %s\n' "${dev}"; done
}
drift_report() { drift+=("$1: $2"); }
expect_netns() {
  expect_netns_name=$1 expect_node=$2 expect_skip=0
  if [[ ! -e /run/netns/$1 ]]; then
    drift_report "$2: namespace" missing
    expect_skip=1
    return 0
  fi
  expect_read
}
expect_root() {
  expect_netns_name='' expect_node=host expect_skip=0
  shift  # `all` devices, or `only` the ones named after it
  expect_read "$@"
}
# --- expect_device DEV, expect_up DEV, expect_addr DEV CIDR, expect_mtu DEV MTU, expect_mac DEV MAC,
# expect_master DEV BRIDGE, expect_route 'DEST [via GATEWAY] [dev DEV]', expect_sysctl KEY VALUE
expect_device() {
  if (( expect_skip )); then return 0; fi
  if [[ -z ${have_mtu[$1]-} ]]; then drift_report "${expect_node}: device $1" missing; gone_dev[$1]=1; fi
}
expect_gone() { (( expect_skip )) || [[ -n ${gone_dev[$1]-} ]]; }
expect_up() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_flags[$1]-} != *,UP,* ]]; then drift_report "${expect_node}: $1 up" "different (down)"; fi
}
expect_addr() {
  if expect_gone "$1"; then return 0; fi
  if [[ -z ${have_addr["$1 $2"]-} ]]; then drift_report "${expect_node}: $1 address $2" missing; fi
}
expect_mtu() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_mtu[$1]-} != "$2" ]]; then drift_report "${expect_node}: $1 mtu $2" "different (${have_mtu[$1]-})"; fi
}
expect_mac() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_mac[$1]-} != "$2" ]]; then drift_report "${expect_node}: $1 mac $2" "different (${have_mac[$1]-})"; fi
}
expect_master() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_master[$1]-} != "$2" ]]; then
    drift_report "${expect_node}: $1 master $2" "different (${have_master[$1]:-no master})"
  fi
}
expect_route() {
  local want line i found=0
  if (( expect_skip )); then return 0; fi
  read -ra want <<<"$1"
  if [[ $1 == *:* ]] && (( ! expect_routes6 )); then
    expect_routes6=1
    while IFS= read -r line; do have_routes+=("${line}"); done < <(
      command ip ${expect_netns_name:+-n "${expect_netns_name}"} -o -6 route show 2>/dev/null)
  fi
  for line in "${have_routes[@]}"; do
    if [[ ${line%% *} != "${want[0]}" ]]; then continue; fi
    found=1
    for (( i = 1; i + 1 < ${#want[@]}; i += 2 )); do
      if [[ " ${line} " != *" ${want[i]} ${want[i + 1]} "* ]]; then found=0; break; fi
    done
    if (( found )); then return 0; fi
  done
  drift_report "${expect_node}: route $1" missing
}
expect_sysctl() {
  local have
  if (( expect_skip )); then return 0; fi
  # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1
  have=$(command ip netns exec "${expect_netns_name}" bash -c 'read -r v <"/proc/sys/${1//.//}" && echo "${v}"' \
    expect_sysctl "$1" 2>/dev/null) || true
  if [[ ${have} != "$2" ]]; then drift_report "${expect_node}: sysctl $1=$2" "different (${have:-unreadable})"; fi
}

# --- record_write: /run/nsgen/LAB_KEY.yaml holds the normalised topology the lab was built from
# (lab_record above prints it), so that `nsgen plan NEW` knows what runs; written in one rename
record_file=/run/nsgen/${lab_key}.yaml
record_write() {
  if (( dry_run )); then echo "dry run: would record the lab in ${record_file}"; return 0; fi
  mkdir -p /run/nsgen
  lab_record >"${record_file}.$$"
  mv -f "${record_file}.$$" "${record_file}"
}

# --- set_sysctl NETNS KEY VALUE: `sysctl -w KEY=VALUE` inside NETNS (the root namespace when
# NETNS is empty), with bash alone
set_sysctl() {
  if [[ -n $1 ]]; then
    # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1 and $2
    ip netns exec "$1" bash -c 'echo "$2" >"/proc/sys/${1//.//}"' set_sysctl "$2" "$3"
  elif (( dry_run )); then
    echo "set_sysctl '' $2 $3"
  else
    echo "$3" >"/proc/sys/${2//.//}"
  fi
}

# --- preflight: the record holds the old topology, and what the change touches is there as the old
# topology declares it (--force: go on anyway)
if (( ! dry_run )); then
  if [[ -e ${record_file} && "$(<"${record_file}")" != "$(lab_record_old)" ]]; then
    echo "${0##*/}: ${record_file} records another topology than this change starts from" >&2
    if (( ! force )); then echo "${0##*/}: nothing was changed (render the plan again, or use --force)" >&2; exit 2; fi
  fi
  lab_expect_old
  if (( ${#drift[@]} > 0 )); then
    for line in "${drift[@]}"; do echo "${0##*/}: drift: ${line}" >&2; done
    if (( ! force )); then
      echo "${0##*/}: the running lab is not what its record says: nothing was changed (--force applies anyway)" >&2
      exit 2
    fi
  fi
fi

# --- undo_ip ARGS: `ip ARGS` during the rollback: what was not made fails quietly, and what
# belongs to someone else (foreign) is not deleted
undo_ip() {
  local ns='' key='' args=("$@") name
  if [[ ${args[0]-} == -n ]]; then ns=${args[1]-}; args=("${args[@]:2}"); fi
  if [[ "${args[*]:0:2}" == "netns del" ]]; then key="netns:${args[2]-}"; fi
  if [[ "${args[*]:0:3}" == "link del dev" ]]; then key="link:${ns}:${args[3]-}"; fi
  for name in "${foreign[@]}"; do
    if [[ ${name} == "${key}" ]]; then
      if [[ ${key} == netns:* ]]; then name="namespace ${key#*:}"; else name="device ${key##*:}"; fi
      echo "${0##*/}: leaving the ${name} alone: it is not the lab's" >&2
      return 0
    fi
  done
  command ip "$@" 2>/dev/null || true
}

# --- rollback: back to the old topology (its record was never changed), then check it
rollback() {
  echo "${0##*/}: rolling back to the old topology" >&2
  ip() { undo_ip "$@"; }
  lab_undo_steps
  unset -f ip
  drift=()
  lab_expect_old
  if (( ${#drift[@]} > 0 )); then
    for line in "${drift[@]}"; do echo "${0##*/}: after the rollback: ${line}" >&2; done
  else
    echo "${0##*/}: rolled back: the lab is its old topology again, and so is its record" >&2
  fi
}
# --- script_line N: line N of this script, to name the step that was running
script_line() {
  local step='' n=0
  while IFS= read -r step && (( ++n < $1 )); do :; done <"$0" || true
  echo "${step#"${step%%[![:space:]]*}"}"
}
# --- foreign_names COMMAND: what the failed COMMAND could not make because someone else has it
# (`netns add X`, `link add name X … peer name Y`), as netns:X or link:NETNS:NAME (NETNS empty for
# the root namespace): the rollback leaves those alone
foreign=()
foreign_names() {
  local words where='' peer='' peer_ns='' k
  read -ra words <<<"${1#ip }"
  if [[ ${words[0]-} == -n ]]; then where=${words[1]}; words=("${words[@]:2}"); fi
  if [[ "${words[*]:0:2}" == "netns add" ]]; then foreign+=("netns:${words[2]-}"); fi
  if [[ "${words[*]:0:3}" != "link add name" ]]; then return 0; fi
  for (( k = 4; k < ${#words[@]}; k++ )); do
    case ${words[k]} in
      netns) if [[ -n ${peer} ]]; then peer_ns=${words[k + 1]-}; else where=${words[k + 1]-}; fi ;;
      peer) peer=${words[k + 2]-} ;;
    esac
  done
  foreign+=("link:${where//\'/}:${words[3]-}")
  if [[ -n ${peer} ]]; then foreign+=("link:${peer_ns//\'/}:${peer}"); fi
}
# --- undo STATUS WHAT LINE [COMMAND]: on a failed step or a signal, name the step (a batch's own
# line, else the line of lab_steps that was running, else LINE of this script), undo what this run
# changed (the script's `rollback`; a second signal meanwhile is ignored), and stop
undo() {
  local line=${failed_batch_line:-$3} i
  trap - ERR
  trap '' INT TERM HUP
  for (( i = 1; i < ${#FUNCNAME[@]}; i++ )); do
    if [[ -z ${failed_batch_line-} && ${FUNCNAME[i]} == lab_steps ]]; then line=${BASH_LINENO[i - 1]}; break; fi
  done
  echo "${0##*/}: $2 at line ${line}: $(script_line "${line}")" >&2
  if (( dry_run )); then exit "$1"; fi
  foreign_names "${4-}"
  set +e
  rollback
  exit "$1"
}
trap 'undo "$?" failed "${LINENO}" "${BASH_COMMAND}"' ERR
trap 'undo 130 interrupted "${LINENO}"' INT
trap 'undo 143 terminated "${LINENO}"' TERM
trap 'undo 129 "hung up" "${LINENO}"' HUP

# --- the change, then the record
lab_steps
trap - ERR INT TERM HUP
if (( dry_run )); then
  echo "dry run: nothing was changed"
  exit 0
fi
record_write
echo "lab ${lab_name}: the change is applied, and recorded in ${record_file}"
