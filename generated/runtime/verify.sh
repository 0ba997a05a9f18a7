# === nsgen runtime: sha256 ba55ca1f35b64afad9fd843fe1e86a59e0797c77cc16517a144ca2ced0e173e9 ===
# verify.sh's runtime, the same in every lab's verify.sh of this nsgen version (`nsgen runtime
# verify.sh` prints it): it checks that the lab is there, then its declared state (lab_expect
# above), then runs its checks (lab_steps above), one line each, ok or FAIL, and exits 1 if any fails.

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
tools=(ip ping)
for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then refuse "'${tool}' was not found: install iproute2 and iputils-ping"; fi
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

# --- every namespace and root-namespace device of the lab must be there
missing=()
for ns in "${lab_netns[@]}"; do
  if [[ ! -e /run/netns/${ns} ]]; then missing+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ ! -e /sys/class/net/${dev} ]]; then missing+=("device ${dev}"); fi
done

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

# --- the declared state first (lab_expect above, what is extra too, as `nsgen status` compares it):
# each difference is one FAIL line (not when none of the lab is there); a lab not all there is not pinged
drifted=0
if (( ! dry_run && ${#missing[@]} < ${#lab_netns[@]} + ${#lab_devices[@]} )); then
  expect_extras=1
  lab_expect
  for line in "${drift[@]}"; do printf 'FAIL  %s\n' "${line}"; done
  drifted=${#drift[@]}
  if (( drifted == 0 )); then echo "ok    lab ${lab_name}: every declared object is there"; fi
fi
if (( ! dry_run && ${#missing[@]} > 0 )); then
  echo "FAIL  lab ${lab_name}: missing ${missing[*]} (run setup.sh)"
  exit 1
fi

# --- pause SECONDS: sleep with bash alone (a read that times out on a pipe nobody writes to)
exec {pause_fd}<> <(:)
pause() { read -rt "$1" -u "${pause_fd}" || true; }

# --- report RESULT TEXT: one line per check, counted
passed=0
failed=0
report() {
  printf '%-5s %s\n' "$1" "$2"
  if [[ $1 == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# --- check reachable|unreachable HOLDER ip netns exec NETNS ping … ADDRESS: the ping must get an
# answer (reachable) or none; one line, ok or FAIL (in a dry run, the ping is printed)
check() {
  local got=unreachable
  if (( dry_run )); then "${@:3}"; return; fi
  if "${@:3}" >/dev/null 2>&1; then got=reachable; fi
  if [[ ${got} == "$1" ]]; then report ok "$6 -> ${*: -1} ($2)"; else report FAIL "$6 -> ${*: -1} ($2)"; fi
}
# --- within SECONDS COMMAND...: COMMAND, stopped after SECONDS (bash alone): its status, or 124
within() {
  local pid tenths
  "${@:2}" &
  pid=$!
  for (( tenths = 0; tenths < $1 * 10; tenths++ )); do
    if ! kill -0 "${pid}" 2>/dev/null; then wait "${pid}"; return; fi
    pause 0.1
  done
  kill "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
  return 124
}
# --- check_tcp open|closed TARGET ip netns exec NETNS bash -c 'exec 3<>/dev/tcp/ADDRESS/PORT': the
# connection to TARGET (ADDRESS:PORT) must open within 2 s, or not; one line, ok or FAIL (in a dry
# run, the command is printed)
check_tcp() {
  local got=closed
  if (( dry_run )); then "${@:3}"; return; fi
  if within 2 "${@:3}" 2>/dev/null; then got=open; fi
  if [[ ${got} == "$1" ]]; then report ok "$6 -> $2 (tcp ${got})"; else report FAIL "$6 -> $2 (tcp ${got}, $1 expected)"; fi
}
# --- check_run PATTERN ip netns exec NETNS bash -c COMMAND: what COMMAND prints within 10 s must
# match PATTERN (bash's =~); one line, ok or FAIL with the start of what it printed
check_run() {
  local output status=0
  if (( dry_run )); then "${@:2}"; return; fi
  output=$(within 10 "${@:2}" 2>&1 </dev/null) || status=$?
  if [[ ${output} =~ $1 ]]; then
    report ok "$5: ${*: -1} (its output matches $1)"
  elif (( status == 124 )); then
    report FAIL "$5: ${*: -1} (timed out after 10 s; its output does not match $1)"
  else
    output=${output//$'\n'/ }
    report FAIL "$5: ${*: -1} (exit status ${status}; its output does not match $1: ${output:0:60})"
  fi
}

lab_steps
if (( dry_run )); then
  echo "dry run: nothing was checked"
  exit 0
fi
echo "lab ${lab_name}: ${passed} passed, ${failed} failed (its checks)"
if (( drifted > 0 )); then echo "lab ${lab_name}: ${drifted} difference(s) from the declared state"; fi
(( failed == 0 && drifted == 0 ))
