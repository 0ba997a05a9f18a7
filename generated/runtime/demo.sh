# === nsgen runtime: sha256 48a492f1003b41c67a57030fed5f54d91e5f769323e5d6374684dc14abcf75ec ===
# demo.sh's runtime, the same in every lab's demo.sh of this nsgen version (`nsgen runtime demo.sh`
# prints it). Each step of the lab above (lab_steps) shows its comment, then its command after a
# prompt, typed out, then runs it for real. If any of the lab is there already it stops before
# changing anything; when it ends, on a failed step or a signal too, it deletes what it created.

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
tools=(ip ping)
for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then refuse "'${tool}' was not found: install iproute2 and iputils-ping"; fi
done

# --- one setup, apply, demo or teardown of this lab at a time: a second one fails at once (flock)
if (( ! dry_run )) && command -v flock >/dev/null 2>&1; then
  exec {lock_fd}>"/run/nsgen-${lab_key}.lock"
  if ! flock -n "${lock_fd}"; then
    echo "${0##*/}: lab ${lab_name} is busy: another run holds /run/nsgen-${lab_key}.lock" >&2
    exit 3
  fi
fi

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

# --- preflight: nothing of the lab may be there, and its subnets overlap no route of the root
# namespace (setup.sh sets a lab up over an overlap with --force)
if (( ${#present[@]} > 0 )); then refuse "lab ${lab_name} is already there: ${present[*]} (run teardown.sh first)"; fi
if (( ${#overlaps[@]} > 0 )); then refuse "${overlaps[0]} of the root namespace"; fi

# --- the FORWARD chain. With bridge netfilter on (bridge-nf-call-iptables=1), frames between two
# ports of a bridge pass FORWARD, and so does the traffic a lab's NAT and forwarded ports route
# through the root namespace; where FORWARD drops it (Docker sets its policy to DROP) the lab comes
# up and its traffic goes unanswered. forward_drop names what drops it: iptables' policy, else (no
# iptables) an nft chain on the forward hook; empty when nothing does (or the lab sends nothing there).
forward_drop=''
forward_added=()
bridge_nf=0
dropped=()  # what of the lab FORWARD would drop
if (( ${#lab_bridges[@]} > 0 )) && [[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  read -r bridge_nf </proc/sys/net/bridge/bridge-nf-call-iptables || bridge_nf=0
fi
if [[ ${bridge_nf} == 1 ]]; then dropped+=("traffic between the namespaces on its bridges (${lab_bridges[*]})"); fi
if (( ${#lab_outside[@]} > 0 )); then
  printf -v what '%s, ' "${lab_outside[@]}"
  dropped+=("its traffic to and from the outside (${what%, })")
fi
if (( ${#dropped[@]} > 0 )) && command -v iptables >/dev/null 2>&1; then
  if [[ $(command iptables -w -S FORWARD 2>/dev/null) == '-P FORWARD DROP'* ]]; then
    forward_drop="the FORWARD chain's policy is DROP (iptables -S FORWARD)"
  fi
elif (( ${#dropped[@]} > 0 )) && command -v nft >/dev/null 2>&1; then
  nft_table='' nft_chain=''
  while read -r kind name rest; do
    case ${kind} in
      table) nft_table="${name} ${rest% \{}" ;;
      chain) nft_chain=${name} ;;
      type) if [[ ${rest} == *'hook forward '*'policy drop;'* && ${nft_table} =~ ^(ip|inet)\  ]]; then
        forward_drop="the chain ${nft_chain} of the nft table ${nft_table} (hook forward) has policy drop (nft list ruleset)"
        break
      fi ;;
    esac
  done < <(command nft list ruleset 2>/dev/null)
fi

# --- preflight: the lab's NAT and forwarded ports are iptables rules; its traffic must pass FORWARD
# (unless --allow-forward; a dry run explains and goes on). --allow-forward's rules
# are iptables rules: without iptables, they are the user's to add.
if (( ${#lab_outside[@]} > 0 )) && ! command -v iptables >/dev/null 2>&1; then
  refuse "the lab's NAT and forwarded ports are iptables rules, and iptables was not found"
elif [[ -n ${forward_drop} ]] && (( allow_forward )) && ! command -v iptables >/dev/null 2>&1; then
  refuse "${forward_drop}, and --allow-forward adds iptables rules, but iptables was not found: accept the lab's bridges there yourself (nft insert rule TABLE CHAIN iifname BR oifname BR accept), then run setup.sh --force"
elif [[ -n ${forward_drop} ]] && (( ! allow_forward )); then
  {
    printf -v what '%s and ' "${dropped[@]}"
    echo "${0##*/}: lab ${lab_name}: ${what% and } would be dropped."
    echo "  Those pass the FORWARD chain (bridged frames where bridge netfilter is on,"
    echo "  net.bridge.bridge-nf-call-iptables=1), and here ${forward_drop}. Nothing was changed. Ways out:"
    echo "    --allow-forward  insert the lab's ACCEPT rules first in FORWARD (lab_accepts above), e.g. per lab bridge BR:"
    echo "                     iptables -I FORWARD -i BR -o BR -m comment --comment nsgen:${lab_key} -j ACCEPT"
    echo "                     (teardown.sh deletes exactly the rules carrying that comment)"
  } >&2
  if (( ! dry_run )); then exit 2; fi
  echo "dry run: a real run would stop here" >&2
fi

# --- allow_forward: with --allow-forward, where FORWARD drops the lab's traffic, its ACCEPT rules
# (lab_accepts: accept MATCH... each), first in the chain, with the lab's comment (a rule already
# there is left alone; delete_rules deletes them)
accept() {
  if (( ! dry_run )) && command iptables -w -C FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT 2>/dev/null; then
    return 0
  fi
  iptables -w -I FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT
  forward_added+=("$*")
}
allow_forward() {
  # something is dropped only where the lab has a bridge or reaches outside: lab_accepts is there
  if (( allow_forward )) && [[ -n ${forward_drop} ]]; then lab_accepts; fi
}

# --- delete_rules: the iptables rules carrying the lab's comment (its NAT, its forwarded ports,
# --allow-forward's FORWARD rules), and only those: each rule `iptables -t TABLE -S` prints with
# it, deleted by the same words (iptables-nft prints the comment in double quotes, legacy iptables bare)
rules_deleted=0
delete_rules() {
  local table words i ours
  if ! command -v iptables >/dev/null 2>&1; then return 0; fi
  for table in filter nat; do
    while read -ra words; do
      ours=0
      for (( i = 1; i < ${#words[@]}; i++ )); do
        if [[ ${words[i]} == '"'*'"' ]]; then words[i]=${words[i]:1:-1}; fi
        if [[ ${words[i - 1]} == --comment && ${words[i]} == "nsgen:${lab_key}" ]]; then ours=1; fi
      done
      if [[ ${words[0]-} != -A ]] || (( ! ours )); then continue; fi
      words[0]=-D
      if (( dry_run )); then
        printf 'iptables -w -t %s' "${table}"
        printf ' %q' "${words[@]}"
        printf '\n'
      else
        command iptables -w -t "${table}" "${words[@]}" || true
      fi
      rules_deleted=$((rules_deleted + 1))
    done < <(command iptables -w -t "${table}" -S 2>/dev/null)
  done
}

# --- link conditions: the qdiscs the lab's links need (lab_qdiscs), each probed before anything
# changes, in a network namespace of its own that goes with the probe (unshare, from util-linux). A
# kind the kernel lacks stops the run, naming the links that need it. tc() runs the lab's `tc`: in a dry run it prints it.
qdiscs_missing=()
for kind in "${lab_qdiscs[@]}"; do
  probe=("${kind}")
  if [[ ${kind} == tbf ]]; then probe=(tbf rate 1mbit burst 16kb latency 50ms); fi
  # (a dry run without root cannot probe: it takes the qdisc to be there)
  if (( EUID == 0 )) && command -v unshare >/dev/null 2>&1 && ! unshare --net tc qdisc add dev lo root "${probe[@]}" 2>/dev/null; then
    qdiscs_missing+=("${kind}")
  fi
done
for kind in "${qdiscs_missing[@]}"; do
  needs=''
  for line in "${lab_conditions[@]}"; do if [[ ${line%% *} == "${kind}" ]]; then needs+="${needs:+; }${line#* }"; fi; done
  message="no ${kind} qdisc in this kernel (sch_${kind}), needed by: ${needs}. Load it (modprobe sch_${kind})"
  if (( ! dry_run )); then refuse "${message}"; fi
  echo "${0##*/}: ${message} (dry run: a real run would stop here)" >&2
done
tc() {
  local kind
  if (( dry_run )); then echo "tc$(printf ' %q' "$@")"; return 0; fi
  for kind in "${qdiscs_missing[@]}"; do
    if [[ " $* " == *" root ${kind} "* ]]; then return 0; fi
  done
  command tc "$@"
}

# --- pause SECONDS: sleep with bash alone (a read that times out on a pipe nobody writes to)
exec {pause_fd}<> <(:)
pause() { read -rt "$1" -u "${pause_fd}" || true; }

# --- the lab's services. start_service NETNS NAME COMMAND [READY SECONDS] runs COMMAND (the
# topology's, verbatim) under `bash -c` inside NETNS, in /, in the background in a session and
# process group of its own, without this script's open files; its output goes to
# /run/nsgen/LAB_KEY/NETNS/NAME.log, its PID (the session's) to NAME.pid, and its exit status, once
# it ends, to NAME.status. With READY (tcp:PORT: the port listens in NETNS; file:PATH: the file
# exists) it waits up to SECONDS for it: a service that ends first or is not ready by then stops
# the run (which stops what it started). stop_service NETNS NAME stops one: TERM to its process
# group, up to 2 s of grace, KILL; then its files go.
service_dir=/run/nsgen/${lab_key}
services_started=()
service_alive() { [[ $2 =~ ^[0-9]+$ && /proc/$2/ns/net -ef /run/netns/$1 ]]; }
# group_running PGID: a process of the group has not ended yet (a zombie has: where nobody reaps
# it, it stays in the group)
group_running() {
  local stat line state pgrp
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"${stat}" || continue
    read -r state _ pgrp _ <<<"${line##*) }"
    if [[ ${pgrp} == "$1" && ${state} != Z ]]; then return 0; fi
  done
  return 1
}
service_log() {
  local lines=() first
  mapfile -t lines 2>/dev/null <"$1" || true
  first=$(( ${#lines[@]} > 5 ? ${#lines[@]} - 5 : 0 ))
  if (( ${#lines[@]} > 0 )); then printf '  | %s\n' "${lines[@]:first}" >&2; else echo "  (empty)" >&2; fi
}
start_service() {
  local dir=${service_dir}/$1 pid tenths port state address file ready=''
  if (( dry_run )); then
    printf 'start_service'
    printf ' %q' "$@"
    printf '\n'
    return 0
  fi
  if [[ -e ${dir}/$2.pid ]]; then stop_service "$1" "$2"; fi  # an instance before this one, ended or not
  mkdir -p "${dir}"
  (
    cd /
    if [[ -n ${lock_fd-} ]]; then exec {lock_fd}>&-; fi
    if [[ -n ${pause_fd-} ]]; then exec {pause_fd}>&-; fi
    # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1 and $2
    exec setsid ip netns exec "$1" bash -c 'bash -c "$1"; echo "$?" >"$2"' service "$3" "${dir}/$2.status"
  ) </dev/null >"${dir}/$2.log" 2>&1 &
  pid=$!
  echo "${pid}" >"${dir}/$2.pid"
  services_started+=("$1/$2")
  if (( $# < 5 )); then echo "service $1/$2 started (pid ${pid})"; return 0; fi
  for (( tenths = 0; tenths <= $5 * 10; tenths++ )); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      wait "${pid}" 2>/dev/null || true
      echo "${0##*/}: service $1/$2 ended before it was ready ($4); the end of ${dir}/$2.log:" >&2
      service_log "${dir}/$2.log"
      return 1
    fi
    # its sockets are its namespace's once it is in it (the first tenths, it may still be on its way)
    if ! service_alive "$1" "${pid}"; then pause 0.1; continue; fi
    case $4 in
      tcp:*)
        printf -v port '%04X' "${4#tcp:}"
        for file in "/proc/${pid}/net/tcp" "/proc/${pid}/net/tcp6"; do
          while read -r _ address _ state _; do
            if [[ ${state} == 0A && ${address##*:} == "${port}" ]]; then ready=1; fi
          done <"${file}" 2>/dev/null || true
        done ;;
      file:*) if [[ -e ${4#file:} ]]; then ready=1; fi ;;
    esac
    if [[ -n ${ready} ]]; then echo "service $1/$2 started (pid ${pid}), ready: $4"; return 0; fi
    pause 0.1
  done
  echo "${0##*/}: service $1/$2 was not ready ($4) within $5 s; the end of ${dir}/$2.log:" >&2
  service_log "${dir}/$2.log"
  return 1
}
stop_service() {
  local dir=${service_dir}/$1 pid='' round
  if (( dry_run )); then echo "stop_service $1 $2"; return 0; fi
  if [[ -r ${dir}/$2.pid ]]; then read -r pid <"${dir}/$2.pid" || true; fi
  # its process group, while any of it runs (the shell that started it may be gone, killed on its own)
  if service_alive "$1" "${pid}" || { [[ ${pid} =~ ^[0-9]+$ ]] && group_running "${pid}"; }; then
    echo "stopping service $1/$2 (pid ${pid})"
    kill -TERM -- "-${pid}" 2>/dev/null || true
    for (( round = 0; round < 20; round++ )); do
      if ! group_running "${pid}"; then break; fi
      pause 0.1
    done
    if (( round == 20 )); then kill -KILL -- "-${pid}" 2>/dev/null || true; fi
  fi
  rm -f "${dir}/$2.pid" "${dir}/$2.log" "${dir}/$2.status"
  rmdir "${dir}" "${service_dir}" 2>/dev/null || true
}
# --- stop_started: stop the services this run started (a rollback's)
stop_started() {
  local started
  for started in "${services_started[@]}"; do stop_service "${started%%/*}" "${started#*/}"; done
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

# --- rollback: the demo ends by stopping the services it started and deleting what it created,
# and the FORWARD rules it added, on a failed step or a signal too
rollback() {
  stop_started
  delete_lab
  delete_rules
  restore_sysctls
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
# --- run [--fails] COMMAND...: a prompt and COMMAND, typed out at ${delay} s a character, then
# COMMAND run for real; with --fails it must fail (a ping the topology expects no answer to).
# run --show TEXT: TEXT typed out, and nothing run (the script runs it next: a function definition)
run() {
  local fails=0 i step
  if [[ $1 == --fails ]]; then fails=1; shift; fi
  if [[ $1 == --show ]]; then step=$2; else step=$(typed "$@"); fi
  printf '%s' "${prompt}"
  if [[ ${delay} =~ ^0*\.?0*$ ]]; then
    printf '%s' "${step}"
  else
    for (( i = 0; i < ${#step}; i++ )); do
      printf '%s' "${step:i:1}"
      pause "${delay}"
    done
  fi
  printf '\n'
  if [[ $1 == --show ]]; then
    return
  elif (( ! fails )); then
    "$@"
  elif "$@"; then
    echo "${0##*/}: an answer came, and the topology expects none" >&2
    return 1
  fi
}

# --- set_sysctl NETNS KEY VALUE: `sysctl -w KEY=VALUE` inside NETNS (the root namespace when
# NETNS is empty), with bash alone. In the root namespace, the value a sysctl that is no device's
# had is recorded first, as a `KEY VALUE` line of /run/nsgen/LAB_KEY.sysctl, for restore_sysctls
sysctl_record=/run/nsgen/${lab_key}.sysctl
set_sysctl() {
  local had=''
  if [[ -n $1 ]]; then
    # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1 and $2
    ip netns exec "$1" bash -c 'echo "$2" >"/proc/sys/${1//.//}"' set_sysctl "$2" "$3"
  elif (( dry_run )); then
    echo "set_sysctl '' $2 $3"
  else
    read -r had <"/proc/sys/${2//.//}"
    mkdir -p /run/nsgen
    # the first value found only (a second set, apply's, would record the lab's own); a device's
    # sysctl (net.*.conf.DEV.*, not all or default) goes with its device
    if [[ $2 != net.*.conf.* || $2 == net.*.conf.all.* || $2 == net.*.conf.default.* ]] && [[ ! -e ${sysctl_record} || $'\n'$(<"${sysctl_record}") != *$'\n'"$2 "* ]]; then
      echo "$2 ${had}" >>"${sysctl_record}"
    fi
    echo "$3" >"/proc/sys/${2//.//}"
  fi
}
# --- restore_sysctls: put back the root namespace's sysctls the lab set (its record). Where another
# running lab set the same one too, the value this lab found is handed to that lab's record
# instead: the last of them puts it back
restore_sysctls() {
  local key had other line lines handed mine entry
  if (( dry_run )) || [[ ! -e ${sysctl_record} ]]; then return 0; fi
  mapfile -t mine <"${sysctl_record}"
  for entry in "${mine[@]}"; do
    read -r key had <<<"${entry}"
    for other in /run/nsgen/*.sysctl; do
      if [[ ${other} == "${sysctl_record}" || ! -e ${other} ]]; then continue; fi
      mapfile -t lines <"${other}"
      handed=0
      for line in "${!lines[@]}"; do
        if [[ ${lines[line]%% *} == "${key}" ]]; then lines[line]="${key} ${had}" handed=1; fi
      done
      if (( handed )); then
        printf '%s\n' "${lines[@]}" >"${other}.$$" && mv -f "${other}.$$" "${other}"
        continue 2
      fi
    done
    echo "${had}" >"/proc/sys/${key//.//}"
  done
  rm -f "${sysctl_record}"
}

allow_forward
lab_steps
trap - ERR
trap '' INT TERM HUP
rollback
echo
echo "lab ${lab_name}: demo done"
