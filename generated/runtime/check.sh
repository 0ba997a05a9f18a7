# === nsgen runtime: sha256 0521e6f424de73917525ad2d3b6bf813b032f48c230d9d676b25146f5302b3b9 ===
# check.sh's runtime, the same in every lab's check.sh of this nsgen version (`nsgen runtime
# check.sh` prints it): each step's facts (lab_step_N above) compared with the kernel in order,
# as `nsgen check` does: ✓ for each step done, ✗ and what it lacks and its commands for the first
# not done, · for the steps after it.

# --- options

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0
if (( $# > 0 )); then refuse "takes no option (got '$1')"; fi

# --- run as root (network namespaces need it): re-run through sudo when we are not
if (( ! dry_run )) && [[ ${EUID} -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then echo "${0##*/}: must run as root, and sudo was not found" >&2; exit 1; fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
tools=(ip)
for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then refuse "'${tool}' was not found: install iproute2"; fi
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

# --- extras: what the kernel has beyond the lab's declared state (lab_expect above), a line each
extras=0
report_extras() {
  local line
  drift=()
  expect_extras=1
  lab_expect
  for line in "${drift[@]}"; do
    if [[ ${line} == *': extra' ]]; then echo "! not the lab's: ${line}"; extras=$((extras + 1)); fi
  done
}
# --- summary DONE: the last line, as `nsgen check` says it
summary() {
  local beyond=''
  if (( extras > 0 )); then beyond=", and ${extras} thing(s) beyond it"; fi
  echo "lab ${lab_name}: $1${beyond}"
}

done_steps=0
checking=1
for (( n = 1; n <= lab_step_count; n++ )); do
  drift=()
  "lab_step_${n}"
  if (( ${#drift[@]} == 0 )); then
    echo "✓ step ${n} \"${step_label}\""
    done_steps=${n}
    continue
  fi
  echo "✗ step ${n} \"${step_label}\": not done"
  printf '  %s\n' "${drift[@]}"
  echo "  its commands, as the guide writes them:"
  printf '    %s\n' "${step_commands[@]}"
  checking=0
  for (( later = n + 1; later <= lab_step_count; later++ )); do
    "lab_step_${later}"
    echo "· step ${later} \"${step_label}\""
  done
  report_extras
  summary "${done_steps} of ${lab_step_count} step(s) done"
  exit 1
done
report_extras
summary "every step is done"
(( extras == 0 ))
