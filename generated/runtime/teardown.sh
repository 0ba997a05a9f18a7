# === nsgen runtime: sha256 eccefdf08ad9ae78c23afddc555d6be596e69712a2e1ab12d948fec253118e71 ===
# teardown.sh's runtime, the same in every lab's teardown.sh of this nsgen version (`nsgen runtime
# teardown.sh` prints it). Safe to run again, and on a half-built lab: it runs the lab's steps
# above (lab_steps) for what of the lab is there, forgets its services' files, deletes its
# iptables rules (NAT, forwarded ports, --allow-forward's) and puts back the root sysctls it changed, then waits until the kernel has let go of the lab.

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
# --- forget_services: the files of the services of the lab's namespaces, those teardown's steps
# did not name (a service renamed since setup) with them: only those nsgen writes, by their names
forget_services() {
  local ns
  if (( dry_run )) || [[ ! -d ${service_dir} ]]; then return 0; fi
  for ns in "${lab_netns[@]}"; do
    if [[ -d ${service_dir}/${ns} ]]; then
      rm -f "${service_dir}/${ns}"/*.pid "${service_dir}/${ns}"/*.log "${service_dir}/${ns}"/*.status
      rmdir "${service_dir}/${ns}" 2>/dev/null || true
    fi
  done
  rmdir "${service_dir}" 2>/dev/null || true
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

# --- the lab's record (/run/nsgen/LAB_KEY.yaml, which setup.sh wrote) goes with it
record_file=/run/nsgen/${lab_key}.yaml

lab_steps
forget_services
delete_rules
restore_sysctls
if (( ! dry_run )); then rm -f "${record_file}"; fi
if (( netns_deleted + devices_deleted + rules_deleted == 0 )); then
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
rules=''
if (( rules_deleted > 0 )); then rules=", ${rules_deleted} iptables rule(s)"; fi
echo "lab ${lab_name} is down: deleted ${netns_deleted} namespace(s), ${devices_deleted} root-namespace device(s)${rules}"
