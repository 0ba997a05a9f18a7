# --- nsgen runtime section facts: sha256 613774d19b70a2add08ac2b68f88317e7e7f6c8475c56b93dbafa55e39b50136 ---
# --- the kinds of fact (nsgen.topology.facts, the one table, written here by nsgen): the words a line
# of a kind not of a device leads with (`route …`; else `DEVICE KIND …`), the kinds of one value per
# key (the line but its last word), where one the lab does not declare is extra, the word a lacking
# flag is said to be, and a route via a gateway with its device (the same route as without it)
declare -A fact_leading=([namespace]=1 [device]=1 [route]=1 [rule]=1 [sysctl]=1 [iptables]=1 [service]=1)
declare -A fact_keyed=([mtu]=1 [mac]=1 [master]=1 [qdisc]=1 [delay]=1 [jitter]=1 [loss]=1 [rate]=1 [service]=1)
declare -A fact_extra=([device]=namespace [address]=declared-device [master]=anywhere [floods]=anywhere [qdisc]=declared-device [delay]=declared-device [jitter]=declared-device [loss]=declared-device [rate]=declared-device [route]=namespace [rule]=namespace [iptables]=anywhere [service]=anywhere)
declare -A fact_absent=([up]=down)
fact_route_via='^(route .* via [^ ]+) dev [^ ]+$'
declare -A lab_accepted  # the lab's FORWARD rules of --allow-forward, by their match (a lab's scripts declare them)
lab_accepted+=()  # (none where they do not)
declare -A accepted_there=()  # those kernel_facts found in the root namespace
# --- forward_record: a file that says the lab has --allow-forward's FORWARD rules, there while it
# has them (setup.sh writes it as it adds them, apply.sh once a change has them, delete_rules deletes
# it with them): where it is, every rule of the lab's not there is missing, even the only one
forward_record=/run/nsgen/${lab_key}.forward
read_floods=0  # whether kernel_dump reads the root namespace's FDB (compare_facts says)
# --- links_text JSON: `ip -j link show`'s JSON array in the words `ip -o link show` writes:
# `N: NAME: <FLAGS> mtu M [master B] [link/ether MAC]`, what kernel_facts reads of a link.
# In a lab namespace nsgen asks for JSON: to write a veth's peer's namespace by name, `ip -o link`
# opens every namespace in /run/netns, each call (1000 namespaces: 10 ms a call, 10 s a status).
links_text() {
  local json=${1#'[{'} object name flags mtu master mac
  while [[ -n ${json} ]]; do  # parameter expansions, not =~ (bash compiles a regex at each match)
    object=${json%%'},{'*} json=${json:${#object}+3}
    if [[ ${object} != *'"ifname":"'*'"'* ]]; then continue; fi  # (a name holding `},{` is cut: not read)
    name=${object#*'"ifname":"'} name=${name%%'"'*}
    if [[ -z ${name} ]]; then continue; fi
    flags='' mtu='' master='' mac=''
    if [[ ${object} == *'"flags":['* ]]; then flags=${object#*'"flags":['} flags=${flags%%']'*} flags=${flags//'"'/}; fi
    if [[ ${object} == *'"mtu":'* ]]; then mtu=${object#*'"mtu":'} mtu=${mtu%%[!0-9]*}; fi
    if [[ ${object} == *'"master":"'* ]]; then master=${object#*'"master":"'} master=" master ${master%%'"'*}"; fi
    if [[ ${object} == *'"link_type":"ether","address":"'* ]]; then
      mac=${object#*'"link_type":"ether","address":"'} mac=" link/ether ${mac%%'"'*}"
    fi
    echo "0: ${name}: <${flags}> mtu ${mtu}${master}${mac}"
  done
}
# --- kernel_dump NETNS [DEV...]: the kernel's state in NETNS as `ip -o` prints it: links (from
# JSON: links_text), addresses, routes of every family in the main table (`route show table all`:
# the others' lines name their table) and IPv4 policy rules, a line `@6` and the IPv6 rules (asked
# for only when there are more than the kernel's two), then a line `@tc` and the qdiscs as `tc qdisc
# show` prints them (only where a link has a tbf or netem root qdisc). In the root namespace (NETNS
# empty): of DEV..., or of every device with with_extras, to find a lab bridge's ports that are not
# the lab's (the qdiscs of every device, one tc: kernel_facts keeps DEV...'s); then a line `@nat`
# and the nat table's rules as `iptables -S` prints them, a line `@filter` and the filter table's,
# and a line `@fdb` and `bridge fdb show` (where read_floods).
# `addr show` comes first: in a batch, one after a `link show` prints links. What is gone (a device,
# a namespace) prints nothing, and is found missing. A test feeds canned output.
rules6_default='[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]'
# --- inside NETNS COMMAND...: COMMAND in NETNS's network, through nsenter where there is one (`ip -n`
# and `ip netns exec` also remount /sys: twice the time). entering NETNS: those words, into `entered`:
# `"${entered[@]}" COMMAND &` forks once, where `inside … &` forks for the function, then again
have_nsenter=0
if command -v nsenter >/dev/null 2>&1; then have_nsenter=1; fi
entering() {
  if (( have_nsenter )); then entered=(nsenter --net="/run/netns/$1"); else entered=(ip netns exec "$1"); fi
}
inside() {
  local entered
  entering "$1"
  command "${entered[@]}" "${@:2}"
}
kernel_dump() {
  local ns=$1 links='' rules6='' json
  shift
  if [[ -n ${ns} ]]; then
    # its links and IPv6 rules (two lines of JSON) through this shell's second file, else (none, or
    # one cut short: a full disk) a command substitution
    local ask=(inside "${ns}" ip -6 -j -force -batch -) asked=$'link show\nrule show'
    if (( ${#dump_files[@]} < 2 )) || ! { "${ask[@]}" <<<"${asked}" >"${dump_files[1]}" 2>/dev/null \
      && { IFS= read -r links && IFS= read -r rules6; } <"${dump_files[1]}"; }; then
      json=$("${ask[@]}" <<<"${asked}" 2>/dev/null) || true
      links=${json%%$'\n'*} rules6=${json#*$'\n'}
    fi
    links_text "${links}"
    inside "${ns}" ip -o -force -batch - <<<$'addr show\nroute show table all\nrule show' 2>/dev/null || true
    echo @6
    if [[ ${rules6} != "${rules6_default}" ]]; then inside "${ns}" ip -o -6 rule show 2>/dev/null || true; fi
    echo @tc
    if [[ ${links} == *'"qdisc":"tbf"'* || ${links} == *'"qdisc":"netem"'* ]]; then inside "${ns}" tc qdisc show 2>/dev/null || true; fi
  else
    if (( with_extras )); then
      command ip -o -force -batch - <<<$'addr show\nlink show' 2>/dev/null || true
    elif (( $# > 0 )); then
      { printf 'addr show dev %s\n' "$@"; printf 'link show dev %s\n' "$@"; } | command ip -o -force -batch - 2>/dev/null || true
    fi
    echo @tc
    if (( with_extras || $# > 0 )); then command tc qdisc show 2>/dev/null || true; fi  # kernel_facts keeps DEV...'s
    echo @nat
    if command -v iptables >/dev/null 2>&1; then command iptables -w -t nat -S 2>/dev/null || true; fi
    echo @filter
    if command -v iptables >/dev/null 2>&1; then command iptables -w -t filter -S 2>/dev/null || true; fi
    echo @fdb
    if (( read_floods )); then command bridge fdb show 2>/dev/null || true; fi
  fi
}
# --- kernel_facts NETNS [DEV...]: what the kernel has in NETNS (in the root namespace, NETNS empty:
# DEV... and their bridge ports), into the caller's array `kernel`, one fact a line in the words of
# nsgen.topology.facts: `device D` (not lo), `D up`, `D mtu N`, `D mac M`, `D master B`, `D address
# A/P` (not link-local), `route [TYPE ]DEST [via G] [dev D] [table T]` (TYPE blackhole, unreachable,
# prohibit or throw; T a table but main; not the kernel's own), `rule [-6 ]PRIORITY SELECTOR…` (not
# the kernel's three), `D qdisc tbf|netem` and `D rate R` (a link condition's root qdisc, its rate in
# the largest unit that divides it), `D delay T`, `D jitter T` and `D loss P%` (netem's, as tc prints
# them), `service NAME running|exited`, `D floods R` (a VXLAN port's all-zero FDB entry to R); in
# the root namespace, the nat and filter tables' rules with the lab's comment, `iptables -t TABLE -A
# CHAIN …` (its comment unquoted, no `-m tcp` after `-p tcp`: as the lab's commands write them), but
# --allow-forward's (lab_accepted). `nsgen status` runs this same reader.
kernel_facts() {
  local ns=$1 words numbered dev i type dst via route_dev table mtu master mac family='' section=ip rate unit size line delay jitter loss
  local key base dump_ended cached
  local -A wanted=()
  shift
  kernel=() accepted_there=()
  for dev in "$@"; do wanted[${dev}]=1; done
  if [[ -n ${ns} ]]; then service_facts "${ns}"; fi
  base=${#kernel[@]} dump_ended=0
  dump_open
  key=${ns:-$'\t'"${with_extras}${read_floods} $*"}  # a namespace's dump is all of it; the root's, of what it asked
  # the dump (ended by `@end`) into this shell's file, and read from there; kept, with dump_caching
  # (dump_cache holds none but with dump_caching)
  cached=${dump_cache[${key}]+cached}
  if (( ${#dump_files[@]} == 2 )); then
    if [[ -n ${cached} ]]; then printf '%s' "${dump_cache[${key}]}"; else kernel_dump "${ns}" "$@" || true; echo @end; fi \
      >"${dump_files[0]}" 2>/dev/null && kernel_parse <"${dump_files[0]}"
    if (( dump_caching && dump_ended )) && [[ -z ${cached} ]]; then
      IFS= read -r -d '' line <"${dump_files[0]}" || true  # (to its end: there is no NUL)
      dump_cache[${key}]=${line}
    fi
  fi
  if (( ! dump_ended )); then  # no file of this shell's, or one cut short (a full disk): through a pipe
    kernel=("${kernel[@]:0:base}") accepted_there=() family='' section=ip
    kernel_parse < <(kernel_dump "${ns}" "$@" || true; echo @end)
  fi
}
# --- kernel_parse: kernel_dump's lines (on stdin) into `kernel` (and accepted_there), in kernel_facts'
# words and with its locals, to the line `@end` (dump_ended: the dump was whole)
kernel_parse() {
  while read -ra words; do  # globs and case, not =~: bash compiles a regex at each match
    case ${words[0]-} in
      @end) dump_ended=1; return 0 ;;
      @6) family='-6 '; continue ;;
      @tc | @nat | @filter | @fdb) section=${words[0]#@}; continue ;;
    esac
    numbered=0  # `N:`, an ip -o link's, address's or rule's first word
    if [[ ${words[0]-} == [0-9]*: && ${words[0]%:} != *[!0-9]* ]]; then numbered=1; fi
    if [[ ${section} == fdb ]]; then  # 00:00:00:00:00:00 dev D dst REMOTE …: D floods to REMOTE
      if [[ ${words[0]-} == 00:00:00:00:00:00 && ${words[1]-} == dev && ${words[3]-} == dst && -n ${wanted[${words[2]}]-} ]]; then
        kernel+=("${words[2]} floods ${words[4]}")
      fi
    elif [[ ${section} == nat || ${section} == filter ]]; then  # -A CHAIN … -m comment --comment "nsgen:KEY" …: the lab's rules
      if [[ ${words[0]-} != -A || " ${words[*]} " != *" --comment nsgen:${lab_key} "* && " ${words[*]} " != *" --comment \"nsgen:${lab_key}\" "* ]]; then continue; fi
      for (( i = 0; i < ${#words[@]}; i++ )); do
        if [[ ${words[i]} == '"'*'"' ]]; then words[i]=${words[i]:1:-1}; fi
        # the match of `-p tcp` that iptables adds on its own
        if (( i > 1 )) && [[ ${words[i]} =~ ^(tcp|udp)$ && ${words[i - 1]} == -m && ${words[i - 2]} == "${words[i]}" ]]; then
          words[i - 1]='' words[i]=''
        fi
      done
      line="${words[*]}"
      while [[ ${line} == *'  '* ]]; do line=${line//  / }; done
      line=${line% }
      # a FORWARD rule --allow-forward adds (lab_accepted: its matches) is the lab's: not extra (and
      # compare_facts names those missing where some of them are there)
      if [[ ${section} == filter && ${line} =~ ^-A\ FORWARD\ (.*)\ -m\ comment\ --comment\ [^\ ]+\ -j\ ACCEPT$ ]] \
        && [[ -n ${lab_accepted[${BASH_REMATCH[1]}]-} ]]; then
        accepted_there[${BASH_REMATCH[1]}]=1
        continue
      fi
      kernel+=("iptables -t ${section} ${line}")
    elif [[ ${section} == tc ]]; then  # qdisc KIND HANDLE: dev D root … [delay T [JITTER]] [loss P%] [rate R …]
      dev='' rate='' delay='' jitter='' loss=''
      for (( i = 2; i + 1 < ${#words[@]}; i++ )); do
        case ${words[i]} in
          dev) dev=${words[i + 1]} ;;
          rate) rate=${words[i + 1]} ;;
          delay) delay=${words[i + 1]}; if [[ ${words[i + 2]-} =~ ^[0-9.]+(s|ms|us)$ ]]; then jitter=${words[i + 2]}; fi ;;
          loss) if [[ ${words[i + 1]} == *% ]]; then loss=${words[i + 1]}; fi ;;  # netem's random loss
        esac
      done
      if [[ ! ${words[1]-} =~ ^(tbf|netem)$ || " ${words[*]} " != *" root "* ]]; then continue; fi
      if [[ -z ${ns} && -z ${wanted[${dev}]-} ]]; then continue; fi
      kernel+=("${dev} qdisc ${words[1]}")
      if [[ ${words[1]} == netem ]]; then
        kernel+=(${delay:+"${dev} delay ${delay}"} ${jitter:+"${dev} jitter ${jitter}"} ${loss:+"${dev} loss ${loss}"})
      fi
      if [[ ${rate} =~ ^([0-9]+)(bit|Kbit|Mbit|Gbit)$ ]]; then
        case ${BASH_REMATCH[2]} in bit) rate=${BASH_REMATCH[1]} ;; Kbit) rate=$((BASH_REMATCH[1] * 1000)) ;;
          Mbit) rate=$((BASH_REMATCH[1] * 1000000)) ;; Gbit) rate=$((BASH_REMATCH[1] * 1000000000)) ;; esac
        unit=bit
        for size in gbit:1000000000 mbit:1000000 kbit:1000; do
          if (( rate % ${size#*:} == 0 )); then unit=${size%%:*}; rate=$((rate / ${size#*:})); break; fi
        done
        kernel+=("${dev} rate ${rate}${unit}")
      fi
    elif (( numbered )) && [[ ${words[2]-} == '<'* ]]; then
      dev=${words[1]%:} mtu='' master='' mac=''
      if [[ ${dev} == ?*@* ]]; then dev=${dev%@*}; fi  # `NAME@PEER` (a name may start with @)
      for (( i = 3; i + 1 < ${#words[@]}; i++ )); do
        case ${words[i]} in
          mtu) mtu=${words[i + 1]}; i=$((i + 1)) ;;
          master) master=${words[i + 1]}; i=$((i + 1)) ;;
          link/ether) mac=${words[i + 1]}; i=$((i + 1)) ;;
        esac
      done
      # in the root namespace: the devices asked for, and the ports of those
      if [[ -z ${ns} && -z ${wanted[${dev}]-} && -z ${wanted[${master:-/}]-} ]]; then continue; fi
      if [[ ${dev} != lo ]]; then kernel+=("device ${dev}"); fi
      if [[ ,${words[2]:1:-1}, == *,UP,* ]]; then kernel+=("${dev} up"); fi
      kernel+=("${dev} mtu ${mtu}")
      if [[ -n ${mac} ]]; then kernel+=("${dev} mac ${mac}"); fi
      if [[ -n ${master} ]]; then kernel+=("${dev} master ${master}"); fi
    elif (( numbered )) && [[ ${words[2]-} == inet* ]]; then
      if [[ -z ${ns} && -z ${wanted[${words[1]}]-} ]]; then continue; fi
      if [[ ${words[3]} != fe80:* ]]; then kernel+=("${words[1]} address ${words[3]}"); fi
    elif (( numbered )); then  # a policy rule
      case "${words[0]} ${words[*]:1}" in
        '0: from all lookup local' | '32766: from all lookup main' | '32767: from all lookup default') ;;
        *) kernel+=("rule ${family}${words[0]%:} ${words[*]:1}") ;;
      esac
    elif [[ " ${words[*]} " == *" table local "* ]]; then  # the kernel's own
      continue
    elif [[ -n ${words[0]-} ]]; then
      type='' dst=${words[0]} via='' route_dev='' table=''
      case ${words[0]} in
        local | broadcast | multicast | anycast | nat) continue ;;
        blackhole | unreachable | prohibit | throw) type="${words[0]} " dst=${words[1]-} ;;
      esac
      for (( i = 1; i + 1 < ${#words[@]}; i++ )); do
        case ${words[i]} in
          via) via=${words[i + 1]} ;;
          dev) route_dev=${words[i + 1]} ;;
          table) table=${words[i + 1]} ;;  # another table than main (the lab's are all in main)
          proto) if [[ ${words[i + 1]} == kernel ]]; then continue 2; fi ;;
        esac
      done
      if [[ -n ${type} ]]; then via='' route_dev=''; fi
      kernel+=("route ${type}${dst}${via:+ via ${via}}${route_dev:+ dev ${route_dev}}${table:+ table ${table}}")
    fi
  done
}
# --- dump_cache: with dump_caching (check.sh's), each place's dump kept, by what it read: the kernel
# read once for every step and the extras, one snapshot (each step read it again: 83 s for the seven
# steps of 1000 namespaces)
declare -A dump_cache=()
dump_caching=0
# --- dump_open: the two files this shell's kernel_dump writes and kernel_facts then reads
# (`dump_files`, their descriptors `dump_fds`: temporary files, deleted at once and kept open, made
# once in each shell that reads, as in_parallel's jobs each do; none where no file can be made, and
# the dump then comes through a pipe). Read from a file rather than a pipe, a place's dump costs no
# subshell: each is a fork of the whole script, and beside 1000 namespaces they were a third of
# reading them. A signal meanwhile waits until the file is deleted (none is left behind).
dump_files=() dump_fds=() dump_shell='' dump_signal=''
dump_open() {
  local file fd traps
  if [[ ${dump_shell} == "${BASHPID}" ]]; then return 0; fi
  dump_shell=${BASHPID} dump_files=() dump_fds=() dump_signal=''
  traps=$(trap -p INT TERM HUP)
  trap 'dump_signal=INT' INT
  trap 'dump_signal=TERM' TERM
  trap 'dump_signal=HUP' HUP
  for _ in 1 2; do
    if ! file=$(mktemp 2>/dev/null); then break; fi
    if exec {fd}<>"${file}"; then dump_fds+=("${fd}") dump_files+=("/dev/fd/${fd}"); fi
    rm -f -- "${file}"
  done
  if (( ${#dump_files[@]} < 2 )); then  # one alone is none
    for fd in "${dump_fds[@]}"; do exec {fd}>&-; done
    dump_files=() dump_fds=()
  fi
  trap - INT TERM HUP
  eval "${traps}"
  if [[ -n ${dump_signal} ]]; then kill -s "${dump_signal}" "${BASHPID}"; fi
}
# --- service_facts NETNS: each service the lab started in NETNS (its PID file under
# /run/nsgen/LAB_KEY/NETNS), `service NAME running` while its process is in NETNS, else `exited`
# (into the caller's array `kernel`)
service_facts() {
  local file name pid
  for file in "/run/nsgen/${lab_key}/$1"/*.pid; do
    if [[ ! -e ${file} ]]; then continue; fi
    name=${file##*/} pid=''
    read -r pid <"${file}" || true
    if [[ ${pid} =~ ^[0-9]+$ && /proc/${pid}/ns/net -ef ${netns_dir}/$1 ]]; then
      kernel+=("service ${name%.pid} running")
    else
      kernel+=("service ${name%.pid} exited")
    fi
  done
}
# --- drift_add KIND NETNS NODE LINE [HAVE]: one difference (KIND missing, different or extra), as a
# line in `drift` (`ns-0: eth0 mtu 1400: different (1500)`) and as tab-separated fields in
# `drift_rows` (KIND, NETNS, NODE, LINE, HAVE: what `nsgen status` reads)
drift=()
drift_rows=()
drift_at=()  # the place (compare_facts' call) of each
drift_add() {
  local said=$1
  if [[ $1 == different ]]; then said+=" (${5-})"; fi
  drift+=("$3: $4: ${said}")
  drift_rows+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"${5-}")
  drift_at+=("${place}")
}
# --- compare_facts NETNS NODE [DEV...]: the lines on stdin are what the lab declares in NETNS (the root
# namespace when NETNS is empty, its DEV... read); compared with kernel_facts line by line, by the
# kinds' table above: a declared line the kernel lacks is `missing`, a keyed one it holds with
# another value `different`, a lacking flag `different (down)`; a missing namespace or device is one
# difference, what it holds is not listed. With with_extras, so is what the kernel has beyond
# them (`extra`, sorted), where the kind's table says an undeclared one counts.
with_extras=0
netns_dir=/run/netns  # where `ip netns` keeps the lab's namespaces
place=0 reader_job=-1 reader_jobs=1  # in_parallel's share: job J of N compares every Nth place
compare_facts() {
  local ns=$1 node=$2 line dev key kind have_value kernel=() extras=() lines=()
  local -A want=() wanted_key=() have=() value=() gone=() devices=()
  shift 2
  place=$((place + 1))
  if (( reader_job >= 0 && place % reader_jobs != reader_job )); then
    while IFS= read -r line; do :; done  # another job's place: its lines read, and left
    return 0
  fi
  if [[ -n ${ns} && ! -e ${netns_dir}/${ns} ]]; then
    drift_add missing "${ns}" "${node}" namespace
    return 0
  fi
  while IFS= read -r line; do lines+=("${line}"); done
  # a spanning bridge's VXLAN port's FDB entries (a multi-host lab's), read where the lab declares some
  read_floods=0
  if [[ -z ${ns} && " ${lines[*]-} " == *" floods "* ]]; then read_floods=1; fi
  kernel_facts "${ns}" "$@"
  for line in "${kernel[@]}"; do
    have[${line}]=1
    kind=${line%% *}
    if [[ -z ${fact_leading[${kind}]-} ]]; then kind=${line#* } kind=${kind%% *}; fi
    if [[ -n ${fact_keyed[${kind}]-} ]]; then value[${line% *}]=${line##* }; fi
    if [[ ${line} == 'route '* && ${line} =~ ${fact_route_via} ]]; then have[${BASH_REMATCH[1]}]=1; fi
  done
  for line in "${lines[@]}"; do
    want[${line}]=1
    kind=${line%% *} dev=/  # no device: a name a device cannot have
    if [[ -z ${fact_leading[${kind}]-} ]]; then dev=${kind} kind=${line#* } kind=${kind%% *}; fi
    if [[ ${kind} == device ]]; then dev=${line#device } devices[${dev}]=1; fi
    key=${line% *}
    if [[ -n ${fact_keyed[${kind}]-} ]]; then wanted_key[${key}]=1; fi
    if [[ -n ${gone[${dev}]-} || -n ${have[${line}]-} ]]; then continue; fi
    if [[ ${kind} == device ]]; then
      gone[${dev}]=1
      drift_add missing "${ns}" "${node}" "${line}"
    elif [[ -n ${fact_absent[${kind}]-} ]]; then
      drift_add different "${ns}" "${node}" "${line}" "${fact_absent[${kind}]}"
    elif [[ ${kind} == sysctl ]]; then  # read when declared: a namespace has thousands
      key=${line#sysctl }
      # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1
      if [[ -n ${ns} ]]; then
        have_value=$(inside "${ns}" bash -c 'read -r v <"/proc/sys/${1//.//}" && echo "${v}"' \
          compare_facts "${key%%=*}" 2>/dev/null) || true
      else
        have_value=${key%%=*}
        read -r have_value <"/proc/sys/${have_value//.//}" 2>/dev/null || have_value=''
      fi
      if [[ ${have_value} != "${key#*=}" ]]; then drift_add different "${ns}" "${node}" "${line}" "${have_value:-unreadable}"; fi
    elif [[ -n ${fact_keyed[${kind}]-} && -n ${value[${key}]-} ]]; then
      drift_add different "${ns}" "${node}" "${line}" "${value[${key}]}"
    else
      drift_add missing "${ns}" "${node}" "${line}"
    fi
  done
  # --allow-forward adds all of its rules or none: where some are there, or its forward_record is,
  # one that is not is missing (as status and verify compare: apply's checks leave them out, its
  # change neither adds nor deletes them)
  if [[ -z ${ns} ]] && (( with_extras && ${#accepted_there[@]} < ${#lab_accepted[@]} )) \
    && { (( ${#accepted_there[@]} > 0 )) || [[ -e ${forward_record} ]]; }; then
    while IFS= read -r key; do
      if [[ -z ${accepted_there[${key}]-} ]]; then
        drift_add missing "${ns}" "${node}" "iptables -t filter -A FORWARD ${key} -m comment --comment nsgen:${lab_key} -j ACCEPT"
      fi
    done < <(printf '%s\n' "${!lab_accepted[@]}" | LC_ALL=C sort)
  fi
  if (( ! with_extras )); then return 0; fi
  for line in "${kernel[@]}"; do
    if [[ -n ${want[${line}]-} ]]; then continue; fi
    kind=${line%% *} dev=/  # no device: a name a device cannot have
    if [[ -z ${fact_leading[${kind}]-} ]]; then dev=${kind} kind=${line#* } kind=${kind%% *}; fi
    # a keyed fact the lab declares with another value is named as different, not extra
    if [[ -n ${fact_keyed[${kind}]-} && -n ${wanted_key[${line% *}]-} ]]; then continue; fi
    if [[ ${line} == 'route '* && ${line} =~ ${fact_route_via} && -n ${want[${BASH_REMATCH[1]}]-} ]]; then continue; fi
    case ${fact_extra[${kind}]-never} in
      never) continue ;;
      namespace) if [[ -z ${ns} ]]; then continue; fi ;;
      declared-device) if [[ -z ${devices[${dev}]-} ]]; then continue; fi ;;
    esac
    extras+=("${line}")
  done
  if (( ${#extras[@]} > 0 )); then  # sorted, as bytes
    mapfile -t extras < <(printf '%s\n' "${extras[@]}" | LC_ALL=C sort)
    for line in "${extras[@]}"; do drift_add extra "${ns}" "${node}" "${line}"; done
  fi
}
# --- in_parallel JOBS FUNCTION: FUNCTION (lab_facts: compare_facts of each place in turn) run by
# JOBS shells at once, each comparing every JOBS-th place; their differences added here in the
# places' order, as if it had run here. A job that does not end fails it.
in_parallel() {
  local row ended=0 kind ns node line first=${#drift_rows[@]}
  reader_jobs=$1 place=0
  while IFS= read -r row; do  # read, not mapfile: a signal meanwhile runs the script's trap
    if [[ ${row} == ended ]]; then ended=$((ended + 1)); fi
    if [[ ${row} != *$'\t'* ]]; then continue; fi
    row=${row#*$'\t'} kind=${row%%$'\t'*}
    row=${row#*$'\t'} ns=${row%%$'\t'*}
    row=${row#*$'\t'} node=${row%%$'\t'*}
    row=${row#*$'\t'} line=${row%%$'\t'*}
    drift_add "${kind}" "${ns}" "${node}" "${line}" "${row#*$'\t'}"
  done < <(
    trap - INT TERM HUP  # a signal ends the jobs: the script's trap (verify.sh's) runs in the script alone
    {
      for (( reader_job = 0; reader_job < reader_jobs; reader_job++ )); do
        (
          export LC_ALL=C  # the kernel's words are ASCII: bash and ip then skip the locale's multibyte work
          "$2"
          for (( row = first; row < ${#drift_rows[@]}; row++ )); do printf '%s\t%s\n' "${drift_at[row]}" "${drift_rows[row]}"; done
          echo ended
        ) &
      done
      wait
    } | LC_ALL=C sort -s -n -t $'\t' -k 1,1
  )
  if (( ended != reader_jobs )); then
    echo "${0##*/}: the kernel's reader failed in $((reader_jobs - ended)) of its ${reader_jobs} jobs" >&2
    return 1
  fi
}
