# --- nsgen runtime section sysctl: sha256 df2031024e96724298e1e6c19fc1f975ae4c7be5b96840250fa93c480e73eb3f ---
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
# --- restore_sysctls (a cleanup hook): put back the root namespace's sysctls the lab set (its
# record). Where another running lab set the same one too, the value this lab found is handed to
# that lab's record instead: the last of them puts it back
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
cleanup_hooks+=(restore_sysctls)
