# --- nsgen runtime section services: sha256 2148d4b3847a7c2682d9a22d755a262f1c6a8bf5e34a4f179b421ac16cc1d610 ---
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
strays=()
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
# --- listens PGID PORT: a process of group PGID (the service's own, not another in its namespace)
# holds a socket listening on TCP PORT: the socket's inode, from its namespace's table, is one of
# the group's open files
listens() {
  local port inodes=() file address state inode stat line pgrp target
  printf -v port '%04X' "$2"
  for file in "/proc/$1/net/tcp" "/proc/$1/net/tcp6"; do
    while read -r _ address _ state _ _ _ _ _ inode _; do
      if [[ ${state} == 0A && ${address##*:} == "${port}" ]]; then inodes+=("socket:[${inode}]"); fi
    done <"${file}" 2>/dev/null || true
  done
  if (( ${#inodes[@]} == 0 )); then return 1; fi
  for stat in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"${stat}" || continue
    read -r _ _ pgrp _ <<<"${line##*) }"
    if [[ ${pgrp} != "$1" ]]; then continue; fi
    while IFS= read -r target; do
      if [[ " ${inodes[*]} " == *" ${target} "* ]]; then return 0; fi
    done < <(readlink "${stat%/stat}"/fd/* 2>/dev/null)
  done
  return 1
}
# --- forked NETNS: what runs in NETNS outside every service's process group (a service that forked
# into the background and ended: a daemon), as `PID (COMM)` in `strays`
forked() {
  local entry line pgrp comm groups=() file pid
  strays=()
  for file in "${service_dir}/$1"/*.pid; do
    if [[ -r ${file} ]] && read -r pid <"${file}"; then groups+=("${pid}"); fi
  done
  for entry in /proc/[0-9]*; do
    if [[ ! ${entry}/ns/net -ef /run/netns/$1 ]]; then continue; fi
    read -r line 2>/dev/null <"${entry}/stat" || continue
    read -r _ _ pgrp _ <<<"${line##*) }"
    if [[ " ${groups[*]} " == *" ${pgrp} "* ]]; then continue; fi
    comm='?'
    read -r comm 2>/dev/null <"${entry}/comm" || true
    strays+=("${entry#/proc/} (${comm})")
  done
}
start_service() {
  local dir=${service_dir}/$1 pid tenths ready=''
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
    trap - INT TERM HUP  # a rollback (apply's) ignores them: the service must not inherit that
    if [[ -n ${lock_fd-} ]]; then exec {lock_fd}>&-; fi
    if [[ -n ${script_out-} ]]; then exec {script_out}>&-; fi
    if [[ -n ${script_err-} ]]; then exec {script_err}>&-; fi
    # shellcheck disable=SC2154  # dump_fds: the reader's files (the facts section's, where a script carries it)
    for fd in ${dump_fds[@]+"${dump_fds[@]}"}; do exec {fd}>&-; done
    # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1 and $2
    exec setsid ip netns exec "$1" bash -c 'bash -c "$1"; echo "$?" >"$2"' service "$3" "${dir}/$2.status"
  ) </dev/null >"${dir}/$2.log" 2>&1 &
  pid=$!
  echo "${pid}" >"${dir}/$2.pid"
  services_started+=("$1/$2")
  if (( $# < 5 )); then
    # started once in its namespace (ip netns exec enters it, a few ms), or ended: a check straight
    # after (apply.sh's) found it still on its way, and named it exited
    for (( tenths = 0; tenths < 100; tenths++ )); do
      if service_alive "$1" "${pid}" || ! kill -0 "${pid}" 2>/dev/null; then break; fi
      sleep 0.01
    done
    echo "service $1/$2 started (pid ${pid})"
    return 0
  fi
  for (( tenths = 0; tenths <= $5 * 10; tenths++ )); do
    if ! kill -0 "${pid}" 2>/dev/null; then
      wait "${pid}" 2>/dev/null || true
      forked "$1"
      if (( ${#strays[@]} > 0 )); then
        echo "${0##*/}: service $1/$2 forked into the background and ended, leaving ${strays[*]}: run it in the foreground (busybox httpd -f, nginx -g 'daemon off;'), so that nsgen can await, check and stop it" >&2
      else
        echo "${0##*/}: service $1/$2 ended before it was ready ($4); the end of ${dir}/$2.log:" >&2
        service_log "${dir}/$2.log"
      fi
      return 1
    fi
    # its sockets are its namespace's once it is in it (the first tenths, it may still be on its way)
    if ! service_alive "$1" "${pid}"; then sleep 0.1; continue; fi
    case $4 in
      tcp:*) if listens "${pid}" "${4#tcp:}"; then ready=1; fi ;;
      file:*) if [[ -e ${4#file:} ]]; then ready=1; fi ;;
    esac
    if [[ -n ${ready} ]]; then echo "service $1/$2 started (pid ${pid}), ready: $4"; return 0; fi
    sleep 0.1
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
      sleep 0.1
    done
    if (( round == 20 )); then kill -KILL -- "-${pid}" 2>/dev/null || true; fi
  fi
  rm -f "${dir}/$2.pid" "${dir}/$2.log" "${dir}/$2.status"
  rmdir "${dir}" "${service_dir}" 2>/dev/null || true
}
# --- stop_started: stop the services this run started (a rollback's), then what they forked into
# the background in their namespaces (a daemon, out of every service's group): TERM, up to 2 s, KILL
stop_started() {
  local started ns seen=' ' round pid line alive=() pids=()
  for started in "${services_started[@]}"; do stop_service "${started%%/*}" "${started#*/}"; done
  for ns in "${services_started[@]%%/*}"; do
    if [[ ${seen} == *" ${ns} "* ]]; then continue; fi
    seen+="${ns} "
    forked "${ns}"
    if (( ${#strays[@]} > 0 )); then echo "stopping what the lab's services left in ${ns}: ${strays[*]}"; fi
    pids+=("${strays[@]%% *}")
  done
  if (( ${#pids[@]} == 0 )); then return 0; fi
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for (( round = 0; round < 20; round++ )); do
    alive=()
    for pid in "${pids[@]}"; do  # a zombie nobody reaps has ended
      if read -r line 2>/dev/null <"/proc/${pid}/stat" && [[ ${line##*) } != Z* ]]; then alive+=("${pid}"); fi
    done
    if (( ${#alive[@]} == 0 )); then return 0; fi
    sleep 0.1
  done
  kill -KILL "${alive[@]}" 2>/dev/null || true
}
# --- forget_services: the files of the lab's services (/run/nsgen/LAB_KEY/NETNS/), those teardown's
# steps did not name (a service renamed since setup) with them: only those nsgen writes, by their names
forget_services() {
  local dir
  if (( dry_run )) || [[ ! -d ${service_dir} ]]; then return 0; fi
  for dir in "${service_dir}"/*/; do
    if [[ ! -d ${dir} ]]; then continue; fi
    rm -f "${dir}"*.pid "${dir}"*.log "${dir}"*.status
    rmdir "${dir}" 2>/dev/null || true
  done
  rmdir "${service_dir}" 2>/dev/null || true
}
# a rollback stops the services its run started before the namespaces go; once they are gone (a
# rollback's end, teardown's), the files of the lab's services go too
stop_hooks+=(stop_started)
cleanup_hooks+=(forget_services)
