# --- nsgen runtime section stop: sha256 928489633155b1a25cc85a7c1024e56f0e54f9037b664a867986cf0c258f25a5 ---
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
    sleep 0.1
  done
  echo "${0##*/}: still running in the lab after KILL: ${pids[*]}" >&2
}
