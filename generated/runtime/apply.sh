# --- nsgen runtime section apply.sh: sha256 4a2bbe137422cb5e63d0de3d9a62583828c934116ddcb7b3e8bb45925ff35c38 ---
# apply.sh's core, the same in every lab's apply.sh of this nsgen version (`nsgen runtime apply.sh`
# prints it, after every section an apply.sh may carry): it checks that the running lab is the old
# topology (its record, and the declared state of what the change touches: lab_facts_old), locks,
# runs the change (lab_steps), checks what it touched against the new topology (lab_facts_new), and
# records the new topology. On a failed step, a signal or a check that fails it runs the rollback
# (lab_undo_steps) and leaves the old topology and its record.

# --- options
#   --dry-run: print the commands this script would run, and change nothing
#   --force: apply the change even where the running lab is not what its record says, or a preflight stops it
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

# --- hooks: lists of functions that the sections before this core (those the lab needs) add to
# (`declare` keeps them), run in order: preflight_hooks before anything changes, ready_hooks once
# the lab's steps are done, before it is said to be up, undone_hooks in a rollback, once the change
# is undone.
declare -a preflight_hooks ready_hooks undone_hooks
# the sections' preflights (--force: past theirs too, as setup.sh's)
for hook in "${preflight_hooks[@]}"; do "${hook}" "${force}" "${allow_forward}"; done

# --- preflight: the record holds the old topology, and what the change touches is there as the old
# topology declares it (--force: go on anyway)
record_clash  # another lab's record: refused, --force or not
if (( ! dry_run )); then
  if [[ -e ${record_file} && "$(<"${record_file}")" != "$(lab_record_old)" ]]; then
    echo "${0##*/}: ${record_file} records another topology than this change starts from" >&2
    if (( ! force )); then refuse "nothing was changed (render the plan again, or use --force)"; fi
  fi
  lab_facts_old
  if (( ${#drift[@]} > 0 )); then
    for line in "${drift[@]}"; do echo "${0##*/}: drift: ${line}" >&2; done
    if (( ! force )); then refuse "the running lab is not what its record says: nothing was changed (--force applies anyway)"; fi
  fi
fi

# --- unless_foreign KEY... -- COMMAND...: during the rollback, COMMAND (a deletion) unless what it
# deletes (KEY: netns:NAME or link:NETNS:NAME, as foreign_names writes them) is someone else's
unless_foreign() {
  local name
  while [[ $1 != -- ]]; do
    for name in "${foreign[@]}"; do
      if [[ ${name} != "$1" ]]; then continue; fi
      if [[ $1 == netns:* ]]; then name="namespace ${1#*:}"; else name="device ${1##*:}"; fi
      echo "${0##*/}: leaving the ${name} alone: it is not the lab's" >&2
      return 0
    done
    shift
  done
  shift
  "$@"
}

# --- rollback: back to the old topology (its record was never changed), then check it
rollback() {
  echo "${0##*/}: rolling back to the old topology" >&2
  # shellcheck disable=SC2329  # what lab_undo_steps runs as `ip`: an undo of tc commands alone runs none
  ip() { command ip "$@" 2>/dev/null || true; }  # what was not made fails quietly
  lab_undo_steps
  unset -f ip
  for hook in "${undone_hooks[@]}"; do "${hook}"; done
  drift=()
  lab_facts_old
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

# --- the change; then what it touched is checked against the new topology (lab_facts_new): where
# the kernel holds anything else, the differences are named and the change is rolled back (with
# --force, which started from a lab not as recorded, they are named and the change kept); then the record
lab_steps
if (( ! dry_run )); then
  drift=()
  lab_facts_new
  for line in "${drift[@]}"; do echo "${0##*/}: after the change: ${line}" >&2; done
  if (( ${#drift[@]} > 0 && force )); then
    echo "${0##*/}: --force: the change is made, and the lab still differs from the new topology there (nsgen status)" >&2
  elif (( ${#drift[@]} > 0 )); then
    trap - ERR
    trap '' INT TERM HUP
    echo "${0##*/}: the change did not give what the new topology declares" >&2
    rollback
    exit 1
  fi
fi
trap - ERR INT TERM HUP
if (( dry_run )); then
  echo "dry run: nothing was changed"
  exit 0
fi
for hook in "${ready_hooks[@]}"; do "${hook}"; done
record_write
echo "lab ${lab_name}: the change is applied, and recorded in ${record_file}"
