#!/usr/bin/env bash
# nsgen's sandbox: a private machine for the guide's recorded parts (nsgen.run.sandbox). `unshare` has made
# it new PID, network and mount namespaces; this script, PID 1 there, gives it its own /run, /var/lib and
# /var/log (tmpfs), /etc and /opt as writable layers over the machine's (overlayfs, the layers in its /run)
# but with no containerd or CNI config and no CNI plugin, and its loopback up, then runs its arguments.
# When it exits every process in it ends, and its mounts, namespaces and devices go with them. Nothing it
# does reaches the machine's network, processes, /run, /var/lib, /var/log, /etc or /opt; the rest of the
# machine's files (/tmp, /home, /usr, /sys) it shares, and containerd's cgroups, which nsgen removes after.
# Usage: sandbox.sh NAME COMMAND [ARG...]   (NAME: its containerd namespace, unique on this machine)
set -Eeuo pipefail
name=$1
shift

# --- its own /run, /var/lib and /var/log
for dir in /run /var/lib /var/log; do
  mount -t tmpfs nsgen-sandbox "${dir}"
done
mkdir /run/netns
# temporary files of what runs here (ctr's console sockets) in its own /run: they go with it, even killed
mkdir /run/tmp
export TMPDIR=/run/tmp

# --- /etc and /opt: the machine's, with what the sandbox writes in a layer of its own
for dir in /etc /opt; do
  layer=/run/nsgen-sandbox${dir}
  mkdir -p "${layer}/upper" "${layer}/work"
  mount -t overlay nsgen-sandbox -o "lowerdir=${dir},upperdir=${layer}/upper,workdir=${layer}/work" "${dir}"
done

# --- a machine fresh for CNI: no containerd config, no CNI config, no plugin installed (empty, writable)
for dir in /etc/containerd /etc/cni /opt/cni; do
  mkdir -p "${dir}"
  mount -t tmpfs nsgen-sandbox "${dir}"
done

ip link set lo up
# containerd's cgroups are named after its namespace, in the machine's cgroup tree: a name of the sandbox's own
export CONTAINERD_NAMESPACE=${name} NSGEN_SANDBOX=${name}
"$@"
