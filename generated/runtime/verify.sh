# --- nsgen runtime section verify.sh: sha256 d5cf655914fee0ef3d1e9a653ea0f21ada71e32c8c38c403438983bcdbfbbc59 ---
# verify.sh's core, the same in every lab's verify.sh of this nsgen version (`nsgen runtime
# verify.sh` prints it, after the section facts): it checks that the lab is there, then its declared
# state (lab_facts above), then runs its checks (lab_steps above), one line each, ok or FAIL, and
# exits 1 if any fails.

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
if ! command -v ip >/dev/null 2>&1; then refuse "'ip' was not found: install iproute2 and iputils-ping"; fi
if ! command -v ping >/dev/null 2>&1; then refuse "'ping' was not found: install iproute2 and iputils-ping"; fi

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

check_pids=() check_expected=() check_texts=()  # the checks started (check_started), in order
checks_read=0  # how many of them are reported
# --- stopped by a signal, it says so, stops its checks, and exits as the signal would: nothing it had
# not reported yet was checked (a check runs in the background, where bash has it ignore SIGINT)
stopped() {
  trap '' INT TERM HUP  # a second one (nsgen passes a Ctrl-C on) would end bash with the last status, 0
  if (( ${#check_pids[@]} > checks_read )); then kill "${check_pids[@]:checks_read}" 2>/dev/null || true; fi
  if [[ -n ${check_dir-} ]]; then rm -rf -- "${check_dir}"; fi
  echo "${0##*/}: $1: lab ${lab_name} was not fully checked" >&2
  exit "$2"
}
trap 'stopped interrupted 130' INT
trap 'stopped terminated 143' TERM
trap 'stopped "hung up" 129' HUP

# --- a_few WORD...: the first five named, the rest counted (`a b c d e and 995 more`): a message
# about a large lab stays one line
a_few() {
  local all=("$@")
  echo "${all[*]:0:5}${all[5]+ and $(( $# - 5 )) more}"
}
# --- every namespace and root-namespace device of the lab must be there
missing=()
for ns in "${lab_netns[@]}"; do
  if [[ ! -e /run/netns/${ns} ]]; then missing+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ ! -e /sys/class/net/${dev} ]]; then missing+=("device ${dev}"); fi
done

# --- the declared state first (lab_facts above, what is extra too, as `nsgen status` compares it):
# each difference is one FAIL line (not when none of the lab is there); a lab not all there is not pinged
drifted=0
if (( ! dry_run && ${#missing[@]} < ${#lab_netns[@]} + ${#lab_devices[@]} )); then
  with_extras=1
  in_parallel 8 lab_facts  # eight shells: the reading is mostly ip's, in processes of their own
  for line in "${drift[@]}"; do printf 'FAIL  %s\n' "${line}"; done
  drifted=${#drift[@]}
  if (( drifted == 0 )); then echo "ok    lab ${lab_name}: every declared object is there"; fi
fi
if (( ! dry_run && ${#missing[@]} > 0 )); then
  if (( ${#missing[@]} == ${#lab_netns[@]} + ${#lab_devices[@]} )); then
    echo "FAIL  lab ${lab_name}: missing $(a_few "${missing[@]}") (run setup.sh)"
  else  # setup.sh refuses a lab partly there
    echo "FAIL  lab ${lab_name}: missing $(a_few "${missing[@]}") (nsgen apply puts them back; or teardown.sh, then setup.sh)"
  fi
  exit 1
fi

# --- report RESULT TEXT: one line per check, counted
passed=0
failed=0
report() {
  printf '%-5s %s\n' "$1" "$2"
  if [[ $1 == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# --- the checks run side by side, up to check_jobs at once: a new one starts as soon as any one
# ends (a check that waits its whole time for an answer holds its slot, not the others'), and they are
# reported in the order they were started (check_read), as soon as those before them are. A drifted
# lab's failed pings and checks wait together, not one after another. A command check's stdout and
# stderr wait in check_dir (made at its first one, removed at the end).
check_jobs=8
check_kinds=() check_dir='' checks_running=0
declare -A check_ended=()  # the checks seen to end (by PID), not reported yet
# `wait -n -p` (bash 5.1) says which check ended; with an older bash, the oldest is waited for in turn
any_ended=0
if (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 501 )); then any_ended=1; fi
# --- check_started KIND EXPECTED TEXT COMMAND...: COMMAND in the background, a check of KIND (ping,
# tcp or run) whose result must be EXPECTED; TEXT names it in its line
check_started() {
  local ended
  if (( any_ended )); then
    while (( checks_running >= check_jobs )); do
      ended=''
      wait -n -p ended 2>/dev/null || true  # any one ends (bash keeps its status for check_read's wait)
      if [[ -z ${ended} ]]; then break; fi
      check_ended[${ended}]=1
      checks_running=$((checks_running - 1))
    done
    # those ended, in order
    while (( checks_read < ${#check_pids[@]} )) && [[ -n ${check_ended[${check_pids[checks_read]}]-} ]]; do check_read; done
  elif (( ${#check_pids[@]} - checks_read >= check_jobs )); then
    check_read
  fi
  if [[ $1 == run ]]; then
    if [[ -z ${check_dir} ]]; then check_dir=$(mktemp -d); fi
    "${@:4}" </dev/null >"${check_dir}/${#check_pids[@]}.out" 2>"${check_dir}/${#check_pids[@]}.err" &
  else
    "${@:4}" </dev/null >/dev/null 2>&1 &
  fi
  check_pids+=("$!") check_kinds+=("$1") check_expected+=("$2") check_texts+=("$3")
  checks_running=$((checks_running + 1))
}
# --- check reachable|unreachable HOLDER NODE NETNS ADDRESS HELD_IN PING...: PING, run inside NETNS
# (NODE's namespace), to ADDRESS, held by HOLDER (in the lab namespace HELD_IN, or '' elsewhere),
# must get an answer (reachable) or none (in a dry run, it is printed). It enters the namespace
# through nsenter (`entering`): `ip netns exec` copies the mount table, 8 ms a ping beside 1000
# namespaces. The pings come namespace after namespace: where the neighbour tables are tight, a
# namespace whose pings have all started is queued for neighbours_forget, and each ping counted
# (neighbours_held).
ping_source=''
check() {
  local entered
  entering "$4"
  if (( dry_run )); then printf '%q' "${entered[0]}"; printf ' %q' "${entered[@]:1}" "${@:7}"; echo; return; fi
  if (( neighbours_tight )); then
    if [[ $4 != "${ping_source}" ]]; then
      if [[ -n ${ping_source} ]]; then forget+=("${ping_source}") forget_after+=("${#check_pids[@]}"); fi
      ping_source=$4
    fi
    neighbours_held "$4" "${6:-/}"
  fi
  check_started ping "$1" "$3 -> $5 ($2)" "${entered[@]}" "${@:7}"
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
# --- check_tcp open|closed TARGET NODE CONNECT...: CONNECT (from NODE's namespace to TARGET, ADDRESS:PORT, with
# bash's /dev/tcp) must open within check_seconds[tcp], or not (in a dry run, CONNECT is printed)
check_tcp() {
  if (( dry_run )); then "${@:4}"; return; fi
  check_started tcp "$1" "$3 -> $2" within "${check_seconds[tcp]}" "${@:4}"
}
# --- check_run PATTERN NODE COMMAND ARGV...: ARGV (COMMAND inside NODE's namespace) must exit 0 within
# check_seconds[run], and what it prints on stdout match PATTERN (bash's =~; an empty one: exit 0 is
# all); its stderr is shown on FAIL, never matched (in a dry run, ARGV is printed)
check_run() {
  if (( dry_run )); then "${@:4}"; return; fi
  check_started run "$1" "$2: $3" within "${check_seconds[run]}" "${@:4}"
}
# --- check_read: the oldest check not reported yet, waited for and reported: one line, ok or FAIL
# (a command check's with the start of its stdout and its stderr)
check_read() {
  local i=${checks_read} status=0 got output errors said
  wait "${check_pids[i]}" || status=$?
  unset 'check_ended[${check_pids[i]}]'
  checks_read=$((checks_read + 1))
  case ${check_kinds[i]} in
    ping)
      got=unreachable
      if (( status == 0 )); then got=reachable; fi
      if [[ ${got} == "${check_expected[i]}" ]]; then report ok "${check_texts[i]}"; else report FAIL "${check_texts[i]}"; fi
      ;;
    tcp)
      got=closed
      if (( status == 0 )); then got=open; fi
      if [[ ${got} == "${check_expected[i]}" ]]; then
        report ok "${check_texts[i]} (tcp ${got})"
      else
        report FAIL "${check_texts[i]} (tcp ${got}, ${check_expected[i]} expected)"
      fi
      ;;
    run)
      output=$(<"${check_dir}/${i}.out") errors=$(<"${check_dir}/${i}.err")
      errors=${errors//$'\n'/ } said="its output matches ${check_expected[i]}"
      if [[ -z ${check_expected[i]} ]]; then said="it exits 0"; fi
      if (( status == 0 )) && [[ ${output} =~ ${check_expected[i]} ]]; then
        report ok "${check_texts[i]} (${said})"
      elif (( status == 124 )); then
        report FAIL "${check_texts[i]} (timed out after ${check_seconds[run]} s)"
      elif (( status != 0 )); then
        output=${output//$'\n'/ }
        report FAIL "${check_texts[i]} (exit status ${status}${output:+; stdout: ${output:0:60}}${errors:+; stderr: ${errors:0:60}})"
      else
        output=${output//$'\n'/ }
        report FAIL "${check_texts[i]} (its output does not match ${check_expected[i]}: ${output:0:60})"
      fi
      ;;
  esac
  if (( neighbours_tight )); then neighbours_forget; fi
}
# --- checks_done: every check started is reported (at the end), and the neighbours counted forgotten
checks_done() {
  if [[ -n ${ping_source} ]]; then forget+=("${ping_source}") forget_after+=("${#check_pids[@]}"); fi
  while (( checks_read < ${#check_pids[@]} )); do check_read; done
  if (( neighbours_tight )); then neighbours_forget; neighbours_spill; fi
  if [[ -n ${check_dir} ]]; then rm -rf -- "${check_dir}"; fi
}

# --- the neighbour tables (ARP's, IPv6's): one each for all the namespaces of the machine, of at
# most gc_thresh3 entries; a ping makes an entry at both of its ends. Where a lab's pings need more
# than that (neighbours_tight), a ping would fail for that alone: so each namespace's entries are
# flushed once its pings are all reported, and those of the lab's root-namespace devices every 32
# namespaces (neighbours_forget). They are caches: the next packet makes its entry again. What a
# namespace holds for answering others' pings is counted too (neighbours_held: an entry at each end
# of each ping, by namespace, '/' the root namespace's): where the count reaches half the smallest
# table (a mesh, where each pings every other), the pings running are waited for and every
# namespace counted is flushed (neighbours_spill).
neighbours_tight=0 neighbours_budget=0
forget=() forget_after=() forgotten=0
declare -A held=()  # the entries each place may hold from the pings since it was last flushed
held_total=0
for version in 4 6; do
  limit='' said=''
  # a network namespace of its own (a container, an emulated host) cannot read it: the kernel's default
  if ! read -r limit 2>/dev/null </proc/sys/net/ipv${version}/neigh/default/gc_thresh3; then limit=1024 said=" (the kernel's default: unreadable here)"; fi
  if (( neighbours_budget == 0 || ${limit:-0} / 2 < neighbours_budget )); then neighbours_budget=$(( ${limit:-0} / 2 )); fi
  if (( ! dry_run && lab_pings[version] * 2 > ${limit:-0} && ${limit:-0} > 0 )); then
    neighbours_tight=1
    echo "${0##*/}: note: its ${lab_pings[version]} IPv${version} pings need up to $(( lab_pings[version] * 2 )) neighbour entries, and this machine keeps at most ${limit}${said} for all its namespaces (net.ipv${version}.neigh.default.gc_thresh3): each namespace's entries are flushed once its pings are done" >&2
  fi
done
# --- neighbours_forget: the namespaces queued (forget) whose pings are all reported, their neighbour
# entries flushed; every 32, the lab's root-namespace devices' too (lab_neighboured)
neighbours_forget() {
  while (( forgotten < ${#forget[@]} && forget_after[forgotten] <= checks_read )); do
    neighbours_flush "${forget[forgotten]}"
    forgotten=$((forgotten + 1))
    if (( forgotten % 32 == 0 || forgotten == ${#forget[@]} )); then neighbours_flush /; fi
  done
}
# --- neighbours_flush PLACE: PLACE's entries flushed (a lab namespace's, or '/': the lab's
# root-namespace devices'), and no longer counted
neighbours_flush() {
  if [[ $1 != / ]]; then
    inside "$1" ip neigh flush all >/dev/null 2>&1 || true
  elif (( ${#lab_neighboured[@]} > 0 )); then
    printf 'neigh flush dev %s\n' "${lab_neighboured[@]}" | command ip -force -batch - >/dev/null 2>&1 || true
  fi
  held_total=$(( held_total - ${held[$1]:-0} ))
  unset 'held[$1]'
}
# --- neighbours_held PLACE...: a ping's entries counted, one at each PLACE (its source's namespace, and
# the namespace that has its address, or '/'); at the budget, neighbours_spill first
neighbours_held() {
  local place
  if (( held_total + $# > neighbours_budget )); then neighbours_spill; fi
  for place in "$@"; do held[${place}]=$(( ${held[${place}]:-0} + 1 )); done
  held_total=$(( held_total + $# ))
}
# --- neighbours_spill: every check started is reported (no ping is halfway), then the entries of
# every namespace counted, and of the lab's root-namespace devices, flushed
neighbours_spill() {
  local place
  while (( checks_read < ${#check_pids[@]} )); do check_read; done
  checks_running=0 check_ended=()
  for place in "${!held[@]}"; do
    if [[ ${place} != / ]]; then neighbours_flush "${place}"; fi
  done
  neighbours_flush /
}

# --- run_heredoc: the lab's commands on stdin (a quoted here-doc), run in turn as if written in its
# place (eval: one command parsed, run and freed at a time). Written in a function, 3000 pings kept
# 14 MB of bash's memory, copied by each ping's fork; as text they keep the 300 KB they are.
run_heredoc() {
  local heredoc_text=''
  IFS= read -r -d '' heredoc_text || true
  eval "${heredoc_text}"
}

lab_steps
checks_done
if (( dry_run )); then
  echo "dry run: nothing was checked"
  exit 0
fi
echo "lab ${lab_name}: ${passed} passed, ${failed} failed (its checks)"
if (( drifted > 0 )); then echo "lab ${lab_name}: ${drifted} difference(s) from the declared state"; fi
(( failed == 0 && drifted == 0 ))
