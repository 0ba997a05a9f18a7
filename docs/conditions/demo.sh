#!/usr/bin/env bash
# A link's rate changed live, for docs/conditions.cast (recorded by tests/test_conditions.py with
# nsgen.run.recording, as `nsgen record` records a lab's demo.sh). Two namespaces on one link at
# 10mbit: a 60 KB ping takes about twice as long as at 20mbit, so its round-trip time shows the
# rate; `nsgen apply` then changes the rate in place, and the ping shows it. Needs root and nsgen.
set -Eeuo pipefail
prefix=${NSGEN_DEMO_PREFIX:-rec-}
work=$(mktemp -d)
trap 'nsgen down "${work}/lab.yaml" --prefix "${prefix}" >/dev/null 2>&1 || true; rm -rf "${work}"' EXIT
cd "${work}"
if [[ -t 1 ]]; then prompt=$'\e[1;32m$\e[0m ' comment=$'\e[36m' plain=$'\e[0m'; else prompt='$ ' comment='' plain=''; fi
say() { printf '\n%s# --- %s%s\n' "${comment}" "$1" "${plain}"; }
run() { printf '%s%s\n' "${prompt}" "$*"; "$@"; }

say "a link whose ends send at 10mbit: a, b on one veth pair"
cat >lab.yaml <<'YAML'
name: rate
namespaces:
  a: {interfaces: {e0: {addresses: [10.94.0.1/24]}}}
  b: {interfaces: {e0: {addresses: [10.94.0.2/24]}}}
links:
  - {endpoints: [a:e0, b:e0], rate: 10mbit}
YAML
run cat lab.yaml
run nsgen up lab.yaml --prefix "${prefix}"
say "a 60 KB ping: its round trip is two 60 KB transfers at the link's rate"
run nsgen exec lab.yaml --prefix "${prefix}" a -- ping -q -c 3 -s 60000 10.94.0.2
say "the rate doubled in the topology, and applied in place: tc qdisc replace, the link untouched"
sed -i 's/rate: 10mbit/rate: 20mbit/' lab.yaml
run nsgen apply lab.yaml --prefix "${prefix}"
run nsgen exec lab.yaml --prefix "${prefix}" a -- ping -q -c 3 -s 60000 10.94.0.2
say "the lab goes"
run nsgen down lab.yaml --prefix "${prefix}"
