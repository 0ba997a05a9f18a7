# === nsgen runtime: sha256 9bcbad72eb180abd48013dbe787eab5a0fd809259307f1972412ed0438db426e ===
# apply.sh's runtime, the same in every lab's apply.sh of this nsgen version (`nsgen runtime
# apply.sh` prints it): it checks that the running lab is the old topology (its record, and the
# declared state of what the change touches: lab_expect_old), locks, runs the change (lab_steps),
# and records the new topology. On a failed step or a signal it runs the rollback (lab_undo_steps)
# and leaves the old topology and its record.

# --- options
#   --dry-run: print the commands this script would run, and change nothing
#   --force: apply the change even where the running lab is not what its record says

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0 force=0
while (( $# > 0 )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --force) force=1 ;;
    *) refuse "unknown option '$1' (known: --dry-run, --force)" ;;
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

# --- kernel_facts NETNS [DEV...]: what the kernel has in NETNS (in the root namespace, NETNS empty:
# DEV... and their bridge ports), one fact a line in the words of the lab's declared lines:
# `device D`, `D up`, `D mtu N`, `D mac M`, `D master B`, `D address A/P` (not link-local),
# `route DEST [via G] [dev D]` (not the kernel's own), `D qdisc tbf|netem` and `D rate R` (a link
# condition's), `service NAME running|exited`. `nsgen status` reads `ip -j` and `tc -j` into the same.
kernel_facts() {
  local ns=$1 words dev i dst via route_dev mtu master mac
  local -A wanted=()
  shift
  for dev in "$@"; do wanted[${dev}]=1; done
  qdisc_facts "${ns}" "$@"
  if [[ -n ${ns} ]]; then service_facts "${ns}"; fi
  while read -ra words; do
    if [[ ${words[0]-} =~ ^[0-9]+:$ && ${words[2]-} == '<'* ]]; then
      dev=${words[1]%:} mtu='' master='' mac=''
      dev=${dev%@*}
      for (( i = 3; i + 1 < ${#words[@]}; i++ )); do
        case ${words[i]} in
          mtu) mtu=${words[i + 1]}; i=$((i + 1)) ;;
          master) master=${words[i + 1]}; i=$((i + 1)) ;;
          link/ether) mac=${words[i + 1]}; i=$((i + 1)) ;;
        esac
      done
      # in the root namespace: the devices asked for, and the ports of those
      if [[ -z ${ns} && -z ${wanted[${dev}]-} && -z ${wanted[${master:-/}]-} ]]; then continue; fi
      echo "device ${dev}"
      if [[ ,${words[2]:1:-1}, == *,UP,* ]]; then echo "${dev} up"; fi
      echo "${dev} mtu ${mtu}"
      if [[ -n ${mac} ]]; then echo "${dev} mac ${mac}"; fi
      if [[ -n ${master} ]]; then echo "${dev} master ${master}"; fi
    elif [[ ${words[0]-} =~ ^[0-9]+:$ ]]; then
      if [[ -z ${ns} && -z ${wanted[${words[1]}]-} ]]; then continue; fi
      if [[ ${words[3]} != fe80:* ]]; then echo "${words[1]} address ${words[3]}"; fi
    elif [[ -n ${words[0]-} && ! ${words[0]} =~ ^(unreachable|blackhole|prohibit|throw|local|broadcast|multicast|anycast|nat)$ ]]; then
      dst=${words[0]} via='' route_dev=''
      for (( i = 1; i + 1 < ${#words[@]}; i++ )); do
        case ${words[i]} in
          via) via=${words[i + 1]} ;;
          dev) route_dev=${words[i + 1]} ;;
          proto) if [[ ${words[i + 1]} == kernel ]]; then continue 2; fi ;;
        esac
      done
      echo "route ${dst}${via:+ via ${via}}${route_dev:+ dev ${route_dev}}"
    fi
  done < <(
    # `addr show` first (in a batch, one after a `link show` prints links). A lab namespace: one dump
    # of each, and its routes. The root namespace: the devices asked for, one by one (apply.sh's
    # few), or, to find a bridge's ports that are not the lab's (extras), one dump of all
    if [[ -n ${ns} ]]; then
      printf 'addr show\nlink show\nroute show\n' | command ip -n "${ns}" -o -force -batch - 2>/dev/null
      command ip -n "${ns}" -o -6 route show 2>/dev/null
    elif (( expect_extras )); then
      printf 'addr show\nlink show\n' | command ip -o -force -batch - 2>/dev/null
    elif (( $# > 0 )); then
      { printf 'addr show dev %s\n' "$@"; printf 'link show dev %s\n' "$@"; } | command ip -o -force -batch - 2>/dev/null
    fi
  )
}
# --- qdisc_facts NETNS [DEV...]: a link condition's root qdisc on each device (of DEV... in the root
# namespace), `D qdisc KIND`, and its rate in the largest unit that divides it (`D rate 2500kbit`)
qdisc_facts() {
  local ns=$1 words i dev kind rate unit size
  local -A wanted=()
  shift
  for dev in "$@"; do wanted[${dev}]=1; done
  while read -ra words; do
    dev='' rate=''
    kind=${words[1]-}
    for (( i = 2; i + 1 < ${#words[@]}; i++ )); do
      case ${words[i]} in
        dev) dev=${words[i + 1]} ;;
        rate) rate=${words[i + 1]} ;;
      esac
    done
    if [[ ! ${kind} =~ ^(tbf|netem)$ || " ${words[*]} " != *" root "* ]]; then continue; fi
    if [[ -z ${ns} && -z ${wanted[${dev}]-} ]]; then continue; fi
    echo "${dev} qdisc ${kind}"
    if [[ ${rate} =~ ^([0-9]+)(bit|Kbit|Mbit|Gbit)$ ]]; then
      case ${BASH_REMATCH[2]} in bit) rate=${BASH_REMATCH[1]} ;; Kbit) rate=$((BASH_REMATCH[1] * 1000)) ;;
        Mbit) rate=$((BASH_REMATCH[1] * 1000000)) ;; Gbit) rate=$((BASH_REMATCH[1] * 1000000000)) ;; esac
      unit=bit
      for size in gbit:1000000000 mbit:1000000 kbit:1000; do
        if (( rate % ${size#*:} == 0 )); then unit=${size%%:*}; rate=$((rate / ${size#*:})); break; fi
      done
      echo "${dev} rate ${rate}${unit}"
    fi
  done < <(
    if [[ -n ${ns} ]] || (( expect_extras )); then
      command tc ${ns:+-n "${ns}"} qdisc show 2>/dev/null
    else
      for dev in "$@"; do command tc qdisc show dev "${dev}" 2>/dev/null | while read -r line; do echo "${line/ root / dev ${dev} root }"; done; done
    fi
  )
}
# --- service_facts NETNS: each service the lab started in NETNS (its PID file under
# /run/nsgen/LAB_KEY/NETNS), `service NAME running` while its process is in NETNS, else `exited`
service_facts() {
  local file name pid
  for file in "/run/nsgen/${lab_key}/$1"/*.pid; do
    if [[ ! -e ${file} ]]; then continue; fi
    name=${file##*/} pid=''
    read -r pid <"${file}" || true
    if [[ ${pid} =~ ^[0-9]+$ && /proc/${pid}/ns/net -ef /run/netns/$1 ]]; then
      echo "service ${name%.pid} running"
    else
      echo "service ${name%.pid} exited"
    fi
  done
}
# --- expect NETNS NODE [DEV...]: the lines on stdin are what the lab declares in NETNS (the root
# namespace when NETNS is empty, its DEV... read); compared with kernel_facts line by line, each
# declared line the kernel lacks is a line in `drift` (`ns-0: route default via 10.0.0.1: missing`,
# `ns-0: eth0 mtu 1400: different (1500)`); a missing namespace or device is one line, what it
# holds is not listed. With expect_extras, so is what the kernel has beyond them (`: extra`): in a
# namespace a device (but lo), a declared device's address, a route; a lab bridge's port.
drift=()
expect_extras=0
expect_single='^(service [^ ]+|[^ ]+ (mtu|mac|master|qdisc|rate)) ([^ ]+)$'  # one value: its key (`eth0 mtu`, `service web`), the value
expect_via='^(route .* via [^ ]+) dev [^ ]+$'  # a route via a gateway, and the same without its device
expect() {
  local ns=$1 node=$2 line dev key kernel=() have_value
  local -A want=() wanted_key=() have=() value=() gone=()
  shift 2
  if [[ -n ${ns} && ! -e /run/netns/${ns} ]]; then
    drift+=("${node}: namespace: missing")
    return 0
  fi
  mapfile -t kernel < <(kernel_facts "${ns}" "$@")
  for line in "${kernel[@]}"; do
    have[${line}]=1
    if [[ ${line} =~ ${expect_single} ]]; then value[${BASH_REMATCH[1]}]=${BASH_REMATCH[3]}; fi
    if [[ ${line} =~ ${expect_via} ]]; then have[${BASH_REMATCH[1]}]=1; fi
  done
  while IFS= read -r line; do
    want[${line}]=1
    wanted_key[${line% *}]=1
    dev=${line#device }
    dev=${dev%% *}
    key=${line% *}
    if [[ -n ${gone[${dev}]-} || -n ${have[${line}]-} ]]; then continue; fi
    case ${line} in
      'device '*) gone[${dev}]=1; drift+=("${node}: ${line}: missing") ;;
      *' up') drift+=("${node}: ${line}: different (down)") ;;
      *' mtu '* | *' mac '* | *' master '* | *' qdisc '* | *' rate '*)
        drift+=("${node}: ${line}: different (${value[${key}]:-no ${key#* }})") ;;
      'service '*' running')
        if [[ -n ${value[${key}]-} ]]; then drift+=("${node}: ${line}: different (${value[${key}]})"); else drift+=("${node}: ${line}: missing"); fi ;;
      'sysctl '*)
        key=${line#sysctl }
        # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1
        have_value=$(command ip netns exec "${ns}" bash -c 'read -r v <"/proc/sys/${1//.//}" && echo "${v}"' \
          expect "${key%%=*}" 2>/dev/null) || true
        if [[ ${have_value} != "${key#*=}" ]]; then drift+=("${node}: ${line}: different (${have_value:-unreadable})"); fi ;;
      *) drift+=("${node}: ${line}: missing") ;;
    esac
  done
  if (( ! expect_extras )); then return 0; fi
  for line in "${kernel[@]}"; do
    dev=${line#device }
    dev=${dev%% *}
    if [[ -n ${want[${line}]-} ]]; then continue; fi
    case ${line} in
      'device lo' | *' up' | *' mtu '* | *' mac '*) continue ;;
      'device '*) if [[ -z ${ns} ]]; then continue; fi ;;
      *' address '*) if [[ -z ${ns} || -z ${want["device ${dev}"]-} ]]; then continue; fi ;;
      # a condition no end declares (a different one is named as such)
      *' qdisc '* | *' rate '*) if [[ -z ${ns} || -z ${want["device ${dev}"]-} || -n ${wanted_key[${line% *}]-} ]]; then continue; fi ;;
      # a service the lab does not declare (one that does and exited is named as such)
      'service '*' running' | 'service '*' exited') if [[ -n ${wanted_key[${line% *}]-} ]]; then continue; fi ;;
      'route '*)
        if [[ ${line} =~ ${expect_via} && -n ${want[${BASH_REMATCH[1]}]-} ]]; then continue; fi ;;
    esac
    drift+=("${node}: ${line}: extra")
  done
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

# --- preflight: the record holds the old topology, and what the change touches is there as the old
# topology declares it (--force: go on anyway)
if (( ! dry_run )); then
  if [[ -e ${record_file} && "$(<"${record_file}")" != "$(lab_record_old)" ]]; then
    echo "${0##*/}: ${record_file} records another topology than this change starts from" >&2
    if (( ! force )); then refuse "nothing was changed (render the plan again, or use --force)"; fi
  fi
  lab_expect_old
  if (( ${#drift[@]} > 0 )); then
    for line in "${drift[@]}"; do echo "${0##*/}: drift: ${line}" >&2; done
    if (( ! force )); then refuse "the running lab is not what its record says: nothing was changed (--force applies anyway)"; fi
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
