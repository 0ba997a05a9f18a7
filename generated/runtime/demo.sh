# --- nsgen runtime section demo.sh: sha256 37a66e69d8336066f66dbb03846d31f79d437eaef7d816520afd9453910ec8aa ---
# demo.sh's core, the same in every lab's demo.sh of this nsgen version (`nsgen runtime demo.sh`
# prints it, after every section a demo.sh may carry). Each step of the lab above (lab_steps) shows
# its comment, then its command after a prompt, typed out, then runs it for real. If any of the lab
# is there already it stops before changing anything; when it ends, on a failed step or a signal
# too, it deletes what it created.

# --- options
#   --allow-forward: where the FORWARD chain drops the lab's traffic, accept it (the rules of lab_accepts)
#   --delay SECONDS: the typing delay per character (default: $NSGEN_TYPING_DELAY, else 0.04; 0 types at once)

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0 allow_forward=0
delay=${NSGEN_TYPING_DELAY:-0.04}
while (( $# > 0 )); do
  case $1 in
    --allow-forward) allow_forward=1 ;;
    --delay=*) delay=${1#*=} ;;
    --delay) if (( $# > 1 )); then delay=$2; shift; else delay=''; fi ;;
    *) refuse "unknown option '$1' (known: --delay, --allow-forward)" ;;
  esac
  shift
done
if [[ ! ${delay} =~ ^[0-9]+(\.[0-9]+)?$ ]]; then refuse "the typing delay is in seconds, like 0.04 (got '${delay}')"; fi

# --- run as root (network namespaces need it): re-run through sudo when we are not
if (( ! dry_run )) && [[ ${EUID} -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then echo "${0##*/}: must run as root, and sudo was not found" >&2; exit 1; fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
if ! command -v ip >/dev/null 2>&1; then refuse "'ip' was not found: install iproute2 and iputils-ping"; fi
if ! command -v ping >/dev/null 2>&1; then refuse "'ping' was not found: install iproute2 and iputils-ping"; fi

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

# --- preflight: no other lab's record under the lab's key (its cleanup deletes what the key names),
# nothing of the lab may be there, and its subnets overlap no route of the root namespace (setup.sh
# sets a lab up over an overlap with --force)
record_clash
if (( ${#present[@]} > 0 )); then refuse "lab ${lab_name} is already there: $(a_few "${present[@]}") (run teardown.sh first)"; fi
if (( ${#overlaps[@]} > 0 )); then refuse "${overlaps[0]} of the root namespace"; fi

# --- hooks: lists of functions that the sections before this core (those the lab needs) add to
# (`declare` keeps them), run in order: preflight_hooks before anything changes, start_hooks before
# the lab's steps, stop_hooks in a rollback before the lab's namespaces go, cleanup_hooks once they
# are gone.
declare -a preflight_hooks start_hooks stop_hooks cleanup_hooks
# the sections' preflights, told --allow-forward (demo.sh has no --force)
for hook in "${preflight_hooks[@]}"; do "${hook}" '' "${allow_forward}"; done

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

# --- rollback: the demo ends by running the stop hooks, deleting what it created and running the
# cleanup hooks, on a failed step or a signal too
rollback() {
  local hook
  for hook in "${stop_hooks[@]}"; do "${hook}"; done
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

# --- the demo's look: colours only on a terminal
if [[ -t 1 ]]; then
  prompt=$'\e[1;32m$\e[0m ' comment=$'\e[36m' plain=$'\e[0m'
else
  prompt='$ ' comment='' plain=''
fi
# --- say LINE...: a step's comment, as the scripts write it
say() {
  local line mark='# --- '
  echo
  for line in "$@"; do
    printf '%s%s%s%s\n' "${comment}" "${mark}" "${line}" "${plain}"
    mark='# '
  done
}
# --- typed WORD...: the words as a person types them, a word the shell would read otherwise in
# single quotes (`bash -c 'exec 3<>/dev/tcp/…'`)
typed() {
  local word shown=()
  for word in "$@"; do
    if [[ ${word} =~ ^[A-Za-z0-9_./:=,+%@-]+$ ]]; then shown+=("${word}"); else shown+=("${word@Q}"); fi
  done
  echo "${shown[*]}"
}
# --- check_seconds[KIND]: how long a check of each KIND may take (nsgen.plan.commands.CHECK_SECONDS)
declare -A check_seconds=([tcp]=2 [run]=10)
# --- within SECONDS COMMAND...: COMMAND, stopped after SECONDS (bash alone): its status, or 124.
# COMMAND runs in a process group of its own (setsid, where there is one), and what it leaves
# running there when it ends (a check's `server &`) is stopped with it: a check leaves nothing behind
have_setsid=0
if command -v setsid >/dev/null 2>&1; then have_setsid=1; fi
within() {
  local pid='' tenths status=124
  # a check in the background (verify.sh's) stopped by a signal stops COMMAND with it (a Ctrl-C
  # reaches its `sleep`, not COMMAND: bash has a background command ignore SIGINT)
  if (( BASHPID != $$ )); then trap 'if [[ -n ${pid} ]]; then kill -- -"${pid}" "${pid}" 2>/dev/null; fi; exit 143' INT TERM HUP; fi
  if (( have_setsid )); then setsid "${@:2}" & else "${@:2}" & fi
  pid=$!
  for (( tenths = 0; tenths < $1 * 10; tenths++ )); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      status=0
      wait "${pid}" || status=$?
      break
    fi
    sleep 0.1
  done
  if (( status == 124 )); then  # too long: all of it
    kill -- -"${pid}" "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  elif (( have_setsid )); then  # what it left running in its group (its own PID, reaped, is no one's now)
    kill -- -"${pid}" 2>/dev/null || true
  fi
  return "${status}"
}
# --- run [--fails] [--within KIND] [--matches PATTERN] COMMAND...: a prompt and COMMAND, typed out
# at ${delay} s a character, then COMMAND run for real, judged as verify.sh judges its checks: it
# must exit 0 (within check_seconds[KIND]: stopped then, it failed), and what it prints match PATTERN
# (bash's =~, shown as it comes); with --fails it must fail (no answer, no connection expected). A
# failed one says FAIL and why, and its status stops the demo.
# run --show TEXT: TEXT typed out, and nothing run (the script runs it next: a function definition)
run() {
  local fails=0 seconds='' pattern='' matching=0 i step output='' status=0
  while :; do
    case $1 in
      --fails) fails=1; shift ;;
      --within) seconds=${check_seconds[$2]}; shift 2 ;;
      --matches) pattern=$2 matching=1; shift 2 ;;
      *) break ;;
    esac
  done
  if [[ $1 == --show ]]; then step=$2; else step=$(typed "$@"); fi
  printf '%s' "${prompt}"
  if [[ ${delay} =~ ^0*\.?0*$ ]]; then
    printf '%s' "${step}"
  else
    for (( i = 0; i < ${#step}; i++ )); do
      printf '%s' "${step:i:1}"
      sleep "${delay}"
    done
  fi
  printf '\n'
  if [[ $1 == --show ]]; then return; fi
  if (( ! fails && ! matching )) && [[ -z ${seconds} ]]; then
    "$@"  # a step: its failure is the script's (its ERR trap, errexit inside a function step)
    return
  fi
  if [[ -n ${seconds} ]]; then set -- within "${seconds}" "$@"; fi
  if (( matching )); then
    { output=$("$@" </dev/null | tee /dev/fd/3; exit "${PIPESTATUS[0]}") || status=$?; } 3>&1
  else
    "$@" || status=$?
  fi
  if (( fails && status == 0 )); then
    echo "${0##*/}: FAIL: an answer came, and the topology expects none" >&2
    return 1
  elif (( fails )); then
    return 0
  elif (( status == 124 )) && [[ -n ${seconds} ]]; then
    echo "${0##*/}: FAIL: not done within ${seconds} s" >&2
  elif (( status != 0 )); then
    echo "${0##*/}: FAIL: exit status ${status}" >&2
  elif (( matching )) && [[ ! ${output} =~ ${pattern} ]]; then
    echo "${0##*/}: FAIL: its output does not match ${pattern}" >&2
    status=1
  fi
  return "${status}"
}

for hook in "${start_hooks[@]}"; do "${hook}"; done
lab_steps
trap - ERR
trap '' INT TERM HUP
rollback
echo
echo "lab ${lab_name}: demo done"
