# --- nsgen runtime section setup.sh: sha256 f04296822d412569c975d92391fb85208f6f79e65ef8727b883e25931d96aff8 ---
# setup.sh's core: it checks, locks, runs the lab's steps above (lab_steps), and on a failed step
# or a signal deletes what this run created, and only that.

# --- options
#   --dry-run: print the commands this script would run, and change nothing
#   --force: set the lab up even where its subnets overlap root routes or FORWARD drops its traffic
#   --allow-forward: where the FORWARD chain drops the lab's traffic, accept it (the rules of lab_accepts)

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0 force=0 allow_forward=0
while (( $# > 0 )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --force) force=1 ;;
    --allow-forward) allow_forward=1 ;;
    *) refuse "unknown option '$1' (known: --dry-run, --force, --allow-forward)" ;;
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

# --- a_few WORD...: the first five named, the rest counted (`a b c d e and 995 more`): a message
# about a large lab stays one line
a_few() {
  local all=("$@")
  echo "${all[*]:0:5}${all[5]+ and $(( $# - 5 )) more}"
}
# --- what of the lab is there already (/run/netns, /sys/class/net), and which of its root-namespace
# subnets overlap a root route (inside them, or around them but the default: traffic would go astray)
present=()
for ns in "${lab_netns[@]}"; do
  if [[ -e /run/netns/${ns} ]]; then present+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ -e /sys/class/net/${dev} ]]; then present+=("device ${dev}"); fi
done
overlaps=()
for net in "${lab_root_networks[@]}"; do
  while read -r dst _; do
    # a route both inside and around a subnet (the same one) is named once
    if [[ ${dst} != default && " ${overlaps[*]-} " != *" ${net} overlaps the route ${dst} "* ]]; then
      overlaps+=("${net} overlaps the route ${dst}")
    fi
  done < <(command ip -o route show root "${net}"; command ip -o route show match "${net}")
done

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
# --- record_write: record_file holds the normalised topology the lab was built from (lab_record
# above prints it), so that `nsgen plan NEW` knows what runs; written in one rename
record_write() {
  if (( dry_run )); then echo "dry run: would record the lab in ${record_file}"; return 0; fi
  mkdir -p /run/nsgen
  lab_record >"${record_file}.$$"
  mv -f "${record_file}.$$" "${record_file}"
}

# --- preflight: the record is this lab's, if any (record_clash); the lab is all there (nothing to do)
# or not at all, and its subnets overlap no root route (unless --force); a lab there from another
# topology is changed by apply, not set up
record_clash
if (( ${#present[@]} > 0 )) && [[ -e ${record_file} && "$(<"${record_file}")" != "$(lab_record)" ]]; then
  refuse "lab ${lab_name} is up from another topology (${record_file}): nsgen apply (or nsgen plan -o, apply.sh) changes it to this one"
elif (( ${#present[@]} == ${#lab_netns[@]} + ${#lab_devices[@]} )) && [[ -e ${record_file} ]]; then
  echo "lab ${lab_name} is already up: nothing to do (./verify.sh checks it)"
  exit 0
elif (( ${#present[@]} > 0 )); then
  refuse "lab ${lab_name} is partly there, or its names are taken: $(a_few "${present[@]}") (another lab's, running? ls /run/nsgen; else run teardown.sh first)"
elif (( ${#overlaps[@]} > 0 && ! force )); then
  refuse "${overlaps[*]} (use --force to set the lab up anyway)"
fi

# --- hooks: lists of functions that the sections before this core (those the lab needs) add to
# (`declare` keeps them), run in order: preflight_hooks before anything changes, start_hooks before
# the lab's steps, stop_hooks in a rollback before the lab's namespaces go, cleanup_hooks once they
# are gone, ready_hooks once the lab's steps are done, before it is said to be up, done_hooks once
# the lab is up.
declare -a preflight_hooks start_hooks stop_hooks cleanup_hooks ready_hooks done_hooks
for hook in "${preflight_hooks[@]}"; do "${hook}" "${force}" "${allow_forward}"; done  # told FORCE ALLOW_FORWARD

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
# --- delete_lab: delete what of the lab is there, but what someone else has (foreign), and wait
# until its devices are gone. Preflight found nothing of the lab, so all the rest is this run's.
delete_lab() {
  local ns dev
  for ns in "${lab_netns[@]}"; do
    if [[ -e /run/netns/${ns} && " ${foreign[*]} " != *" netns:${ns} "* ]]; then command ip netns del "${ns}" || true; fi
  done
  for dev in "${lab_devices[@]}"; do
    if [[ -e /sys/class/net/${dev} && " ${foreign[*]} " != *" link::${dev} "* ]]; then command ip link del dev "${dev}" 2>/dev/null || true; fi
  done
  await_gone
}

# --- rollback: end the batches still running, then the stop hooks, delete_lab, the cleanup hooks
rollback() {
  local hook
  stop_batches
  for hook in "${stop_hooks[@]}"; do "${hook}"; done
  echo "${0##*/}: deleting what this run created" >&2
  delete_lab
  for hook in "${cleanup_hooks[@]}"; do "${hook}"; done
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
  # in a subshell (a reader's process substitution inherits the ERR trap): it ends, and its shell goes
  # on (seeing what it read missing); only the script's own shell rolls back
  if (( BASHPID != $$ )); then exit "$1"; fi
  trap - ERR
  trap '' INT TERM HUP
  exec 1>&"${script_out}" 2>&"${script_err}"  # a signal may come while a step's output goes elsewhere
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
# the script's own output and errors, kept for undo: a step may send its own to /dev/null
exec {script_out}>&1 {script_err}>&2
trap 'undo 1 failed "${LINENO}" "${BASH_COMMAND}"' ERR  # 1 whatever the command's own status (ip's 2 is no usage error)
trap 'undo 130 interrupted "${LINENO}"' INT
trap 'undo 143 terminated "${LINENO}"' TERM
trap 'undo 129 "hung up" "${LINENO}"' HUP

# --- the lab's batches: root_batch runs the root namespace's commands (a here-doc) in one `ip
# -batch`; netns_batch NETNS then a namespace's inside it, in the background, 64 at once. A dry
# run prints them in order. A failed batch stops the run; a failed root line names its object,
# which may be someone else's. Labs of over 50 namespaces show progress (`nsgen up` draws a bar).
# --- inside NETNS COMMAND...: COMMAND in NETNS's network, through nsenter where there is one (`ip -n`
# and `ip netns exec` also remount /sys: twice the time). entering NETNS: those words, into `entered`:
# `"${entered[@]}" COMMAND &` forks once, where `inside … &` forks for the function, then again
have_nsenter=0
if command -v nsenter >/dev/null 2>&1; then have_nsenter=1; fi
entering() {
  if (( have_nsenter )); then entered=(nsenter --net="/run/netns/$1"); else entered=(ip netns exec "$1"); fi
}
inside() {
  local entered
  entering "$1"
  command "${entered[@]}" "${@:2}"
}
batch_pids=() batch_netns=() batch_lines=() batches_awaited=0 progress_shown=0 failed_batch_line=''
root_batch() {
  local errors failed=''
  if (( dry_run )); then ip -batch -; return; fi
  if { errors=$(command ip -batch - 2>&1 1>&3); } 3>&1; then return 0; fi
  echo "${errors}" >&2
  if [[ ${errors} =~ Command\ failed\ -:([0-9]+) ]]; then failed=$(script_line "$((BASH_LINENO[0] + BASH_REMATCH[1]))"); fi
  undo 1 "the root namespace's batch failed${failed:+ (${failed})}" "${BASH_LINENO[0]}" "${failed}"
}
netns_batch() {
  local tenths entered
  if (( dry_run )); then ip -n "$1" -batch -; return; fi
  entering "$1"
  "${entered[@]}" ip -batch - <&0 &
  batch_pids+=("$!") batch_netns+=("$1") batch_lines+=("${BASH_LINENO[0]}")
  tenths=$((${#batch_pids[@]} * 10 / ${#lab_netns[@]}))
  if (( ${#lab_netns[@]} > 50 && tenths > progress_shown )); then
    progress_shown=${tenths}
    echo "progress: $((tenths * 10)) % (${#batch_pids[@]}/${#lab_netns[@]} namespaces)"
  fi
  if (( ${#batch_pids[@]} - batches_awaited >= 64 )); then await_batch; fi
}
# --- await_batch: wait for the oldest namespace batch still running (bash keeps the status of one
# that has ended): one that failed stops the run; await_batches waits for them all
await_batch() {
  local n=$((batches_awaited++))
  if ! wait "${batch_pids[n]}"; then
    failed_batch_line=${batch_lines[n]}
    undo 1 "the batch inside ${batch_netns[n]} failed" "${batch_lines[n]}"
  fi
}
await_batches() {
  while (( batches_awaited < ${#batch_pids[@]} )); do await_batch; done
}
# --- stop_batches: end the batches still running (on a failure or a signal), and only those (the
# script may have other background jobs)
stop_batches() {
  local running=("${batch_pids[@]:batches_awaited}")
  if (( ${#running[@]} == 0 )); then return 0; fi
  kill "${running[@]}" 2>/dev/null || true
  wait "${running[@]}" 2>/dev/null || true
}

# --- the start hooks, the lab's steps and the batches still running, then the record
for hook in "${start_hooks[@]}"; do "${hook}"; done
lab_steps
await_batches
trap - ERR INT TERM HUP
if (( dry_run )); then echo "dry run: nothing was changed"; exit 0; fi
for hook in "${ready_hooks[@]}"; do "${hook}"; done
record_write
echo "lab ${lab_name} is up: ${#lab_netns[@]} namespace(s), ${#lab_devices[@]} root-namespace device(s)"
for hook in "${done_hooks[@]}"; do "${hook}"; done
# what to run next: these scripts, or what NSGEN_NEXT says (nsgen up, whose scripts are gone by then)
echo "next: ${NSGEN_NEXT:-./verify.sh; source helpers.sh && displayAddr; ./teardown.sh}"
