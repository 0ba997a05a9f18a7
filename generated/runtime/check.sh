# --- nsgen runtime section check.sh: sha256 8c8818562aa8b539f2d6210fdfa4c7d29a6b0b0d01a559a4ba4fa4aed8648a95 ---
# check.sh's core, the same in every lab's check.sh of this nsgen version (`nsgen runtime check.sh`
# prints it, after the section facts): each step's facts (lab_step_N above) compared with the
# kernel in order, as `nsgen check` does: ✓ for each step done, ✗ and what it lacks and its commands
# for the first not done, · for the steps after it.

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
if ! command -v ip >/dev/null 2>&1; then refuse "'ip' was not found: install iproute2"; fi

# --- report_extras: what the kernel has beyond the lab's declared state (lab_facts above), a line each
extra_count=0
report_extras() {
  local line
  drift=()
  with_extras=1
  in_parallel 8 lab_facts
  for line in "${drift[@]}"; do
    if [[ ${line} == *': extra' ]]; then echo "! not the lab's: ${line}"; extra_count=$((extra_count + 1)); fi
  done
}
# --- summary DONE: the last line, as `nsgen check` says it
summary() {
  local beyond=''
  if (( extra_count > 0 )); then beyond=", and ${extra_count} thing(s) beyond it"; fi
  echo "lab ${lab_name}: $1${beyond}"
}

# --- what gives a keyed fact of a device its value, its device and value in place (the fact table's
# `make`, nsgen.topology.facts.repair_words)
declare -A fact_repair=([mtu]='link set dev {device} mtu {value}' [mac]='link set dev {device} address {value}' [master]='link set dev {device} master {value}')
# --- repairs: what repairs the step's differences (drift_rows), into `fixes`, when each is a value
# other than declared of a kind the table can give (fact_repair): `ip [-n NETNS] link set dev D mtu
# M`, as `nsgen check` writes it; else none (the step's own commands make what it lacks)
repairs() {
  local row kind netns line device fact value fix
  fixes=()
  for row in "${drift_rows[@]}"; do
    IFS=$'\t' read -r kind netns _ line _ <<<"${row}"
    read -r device fact value <<<"${line}"
    if [[ ${kind} != different || -z ${fact_repair[${fact}]-} ]]; then fixes=(); return 0; fi
    fix=${fact_repair[${fact}]//'{device}'/${device}}
    fixes+=("ip${netns:+ -n ${netns}} ${fix//'{value}'/${value}}")
  done
}

done_steps=0
checking=1
dump_caching=1  # the kernel read once, for every step and the extras
for (( n = 1; n <= lab_step_count; n++ )); do
  drift=() drift_rows=()
  "lab_step_${n}"
  if (( ${#drift[@]} == 0 )); then
    echo "✓ step ${n} \"${step_label}\""
    done_steps=${n}
    continue
  fi
  echo "✗ step ${n} \"${step_label}\": not done"
  printf '  %s\n' "${drift[@]}"
  repairs
  if (( ${#fixes[@]} > 0 )); then
    echo "  what repairs it:"
    printf '    %s\n' "${fixes[@]}"
  else
    echo "  its commands, as the guide writes them:"
    printf '    %s\n' "${step_commands[@]}"
  fi
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
(( extra_count == 0 ))
