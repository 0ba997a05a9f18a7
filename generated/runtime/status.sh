# --- nsgen runtime section status.sh: sha256 8e8c130f7e377789729ae9084d57915eb5e2482fbf35a8c462bc180084d487c9 ---
# status.sh's core, the same in every host's status.sh of this nsgen version (`nsgen runtime
# status.sh` prints it, after the section facts): this host's part of a multi-host lab (lab_facts
# above) compared with the kernel here, what is extra too (and what else carries the lab's prefix),
# as `nsgen status` reads it: one difference a line, its fields tab-separated (KIND, NETNS, NODE,
# LINE, HAVE: drift_rows), then a line that says it read everything. It exits 0 whatever it finds:
# nsgen status, on the controller, says what the rows mean.

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

with_extras=1
in_parallel 8 lab_facts  # eight shells: the reading is mostly ip's, in processes of their own
# --- what carries the lab's prefix here and is not the lab's (a namespace, a root-namespace device), as
# nsgen status names it on one machine
if [[ -n ${lab_prefix} ]]; then
  declare -A ours=()
  for name in "${lab_netns[@]}" "${lab_devices[@]}"; do ours[${name}]=1; done
  for path in "${netns_dir}/${lab_prefix}"*; do
    if [[ -e ${path} && -z ${ours[${path##*/}]-} ]]; then drift_add extra "${path##*/}" "${path##*/}" namespace; fi
  done
  for path in "/sys/class/net/${lab_prefix}"*; do
    if [[ -e ${path} && -z ${ours[${path##*/}]-} ]]; then drift_add extra '' host "device ${path##*/}"; fi
  done
fi
if (( ${#drift_rows[@]} > 0 )); then printf '%s\n' "${drift_rows[@]}"; fi
# --- each declared service that is not running: its exit status and the last lines of its log, a line
# each (`service<TAB>NETNS<TAB>NAME<TAB>status:EXIT`, then `…<TAB>log:LINE`, a tab in it a space), which
# nsgen status shows under its difference as it does on one machine
for row in "${drift_rows[@]}"; do
  kind=${row%%$'\t'*} row=${row#*$'\t'}
  ns=${row%%$'\t'*} row=${row#*$'\t'} row=${row#*$'\t'}
  if [[ ${kind} == extra || -z ${ns} || ${row} != 'service '* ]]; then continue; fi
  name=${row#service } name=${name%% *}
  exit_status=''
  read -r exit_status 2>/dev/null <"/run/nsgen/${lab_key}/${ns}/${name}.status" || true
  printf 'service\t%s\t%s\tstatus:%s\n' "${ns}" "${name}" "${exit_status}"
  while IFS= read -r line; do
    printf 'service\t%s\t%s\tlog:%s\n' "${ns}" "${name}" "${line//$'\t'/ }"
  done < <(tail -n 5 "/run/nsgen/${lab_key}/${ns}/${name}.log" 2>/dev/null || true)
done
# --- record_file: where the lab's record is, the normalised topology it was built from (setup.sh
# and apply.sh write it, teardown.sh deletes it, a host's status.sh sends it to the controller)
record_file=/run/nsgen/${lab_key}.yaml
# --- this host's record of the lab, a line each (`record<TAB>LINE`): the controller rebuilds the
# running lab from the hosts' records where it has none of its own
if [[ -e ${record_file} ]]; then
  while IFS= read -r line || [[ -n ${line} ]]; do printf 'record\t%s\n' "${line}"; done <"${record_file}"
fi
echo "status.sh: lab ${lab_name}: ${#drift_rows[@]} difference(s) here"
