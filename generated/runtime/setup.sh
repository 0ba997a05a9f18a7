# === nsgen runtime: sha256 2bb94d89c93e73a041cf832742b3a4116757153756c167cb2f1b8604809862bb ===
# setup.sh's runtime, the same in every lab's setup.sh of this nsgen version (`nsgen runtime
# setup.sh` prints it): it checks, locks, runs the lab's steps above (lab_steps), and on a failed
# step or a signal deletes what this run created, and only that.

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

# --- record_write: /run/nsgen/LAB_KEY.yaml holds the normalised topology the lab was built from
# (lab_record above prints it), so that `nsgen plan NEW` knows what runs; written in one rename
record_file=/run/nsgen/${lab_key}.yaml
record_write() {
  if (( dry_run )); then echo "dry run: would record the lab in ${record_file}"; return 0; fi
  mkdir -p /run/nsgen
  lab_record >"${record_file}.$$"
  mv -f "${record_file}.$$" "${record_file}"
}

# --- preflight: the lab is all there (nothing to do) or not at all, and its subnets overlap no
# root route (unless --force); a lab there from another topology is changed by apply, not set up
if (( ${#present[@]} > 0 )) && [[ -e ${record_file} && "$(<"${record_file}")" != "$(lab_record)" ]]; then
  refuse "lab ${lab_name} is up from another topology (${record_file}): nsgen apply (or nsgen plan -o, apply.sh) changes it to this one"
elif (( ${#present[@]} == ${#lab_netns[@]} + ${#lab_devices[@]} )) && [[ -e ${record_file} ]]; then
  echo "lab ${lab_name} is already up: nothing to do (./verify.sh checks it)"
  exit 0
elif (( ${#present[@]} > 0 )); then
  refuse "lab ${lab_name} is partly there, or its names are taken: ${present[*]} (another lab's, running? ls /run/nsgen; else run teardown.sh first)"
elif (( ${#overlaps[@]} > 0 && ! force )); then
  refuse "${overlaps[*]} (use --force to set the lab up anyway)"
fi

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
# (unless --allow-forward or --force; a dry run explains and goes on). --allow-forward's rules
# are iptables rules: without iptables, they are the user's to add.
if (( ${#lab_outside[@]} > 0 )) && ! command -v iptables >/dev/null 2>&1; then
  refuse "the lab's NAT and forwarded ports are iptables rules, and iptables was not found"
elif [[ -n ${forward_drop} ]] && (( allow_forward )) && ! command -v iptables >/dev/null 2>&1; then
  refuse "${forward_drop}, and --allow-forward adds iptables rules, but iptables was not found: accept the lab's bridges there yourself (nft insert rule TABLE CHAIN iifname BR oifname BR accept), then run setup.sh --force"
elif [[ -n ${forward_drop} ]] && (( ! allow_forward && ! force )); then
  {
    printf -v what '%s and ' "${dropped[@]}"
    echo "${0##*/}: lab ${lab_name}: ${what% and } would be dropped."
    echo "  Those pass the FORWARD chain (bridged frames where bridge netfilter is on,"
    echo "  net.bridge.bridge-nf-call-iptables=1), and here ${forward_drop}. Nothing was changed. Ways out:"
    echo "    --allow-forward  insert the lab's ACCEPT rules first in FORWARD (lab_accepts above), e.g. per lab bridge BR:"
    echo "                     iptables -I FORWARD -i BR -o BR -m comment --comment nsgen:${lab_key} -j ACCEPT"
    echo "                     (teardown.sh deletes exactly the rules carrying that comment)"
    echo "    --force          set the lab up as it is, that traffic dropped"
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
# kind the kernel lacks stops the run, naming the links that need it; with --force they come up
# without those conditions, and it says which. tc() runs the lab's `tc`: in a dry run it prints it.
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
  if (( force )); then echo "${0##*/}: --force: ${message/. Load it*/}: going on without them" >&2; continue; fi
  message+=", or use --force to go on without them"
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

# --- rollback: end the batches still running, stop the services this run started, delete what
# it created, and the FORWARD rules it added
rollback() {
  stop_batches
  stop_started
  echo "${0##*/}: deleting what this run created" >&2
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

# --- the lab's batches: root_batch runs the root namespace's commands (a here-doc) in one `ip
# -batch`; netns_batch NETNS then a namespace's inside it, in the background, 64 at once (through
# nsenter where it is: `ip -n` also remounts /sys, which costs more with every namespace). A dry
# run prints them in order. A failed batch stops the run; a failed root line names its object,
# which may be someone else's. Labs of over 50 namespaces show progress (`nsgen up` draws a bar).
have_nsenter=0
if command -v nsenter >/dev/null 2>&1; then have_nsenter=1; fi
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
  local tenths
  if (( dry_run )); then ip -n "$1" -batch -; return; fi
  if (( have_nsenter )); then nsenter --net="/run/netns/$1" ip -batch - <&0 & else ip -n "$1" -batch - <&0 & fi
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
# --- stop_batches: end the batches still running (on a failure or a signal), and only those (a
# service is a background job too)
stop_batches() {
  local running=("${batch_pids[@]:batches_awaited}")
  if (( ${#running[@]} == 0 )); then return 0; fi
  kill "${running[@]}" 2>/dev/null || true
  wait "${running[@]}" 2>/dev/null || true
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

# --- the FORWARD rules first (the lab's traffic passes once it is up), the lab's steps and the
# batches still running, then the record
allow_forward
lab_steps
await_batches
trap - ERR INT TERM HUP
if (( dry_run )); then echo "dry run: nothing was changed"; exit 0; fi
record_write
echo "lab ${lab_name} is up: ${#lab_netns[@]} namespace(s), ${#lab_devices[@]} root-namespace device(s)"
if (( ${#forward_added[@]} > 0 )); then
  echo "FORWARD accepts the lab's traffic: ${#forward_added[@]} iptables rule(s) with the comment nsgen:${lab_key} (teardown.sh deletes them)"
elif [[ -n ${forward_drop} ]] && (( ! allow_forward )); then
  echo "${0##*/}: set up with --force: ${forward_drop}, and it drops ${dropped[*]}" >&2
fi
# what to run next: these scripts, or what NSGEN_NEXT says (nsgen up, whose scripts are gone by then)
echo "next: ${NSGEN_NEXT:-./verify.sh; source helpers.sh && displayAddr; ./teardown.sh}"
