# --- nsgen runtime section check.sh: sha256 f7fa18c6915a107eaf5cbe01d47d1229b1f259f9889b11eba5dd1b61a220b36b ---
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
  lab_facts
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

# --- repairs: what repairs the step's differences (drift_rows), when each is a value another than
# declared and has a repair (step_repairs), into `fixes`; else none (the step's commands make it)
repairs() {
  local row kind node line i fix
  fixes=()
  for row in "${drift_rows[@]}"; do
    IFS=$'\t' read -r kind _ node line _ <<<"${row}"
    fix=''
    for (( i = 0; i + 1 < ${#step_repairs[@]}; i += 2 )); do
      if [[ ${kind} == different && ${step_repairs[i]} == "${node}: ${line}" ]]; then fix=${step_repairs[i + 1]}; break; fi
    done
    if [[ -z ${fix} ]]; then fixes=(); return 0; fi
    fixes+=("${fix}")
  done
}

done_steps=0
checking=1
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
