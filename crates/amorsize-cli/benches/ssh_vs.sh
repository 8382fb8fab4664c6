#!/usr/bin/env bash
# `amorsize run --slf` against GNU parallel `--slf`, over the same two hosts, side by side in
# one run. The hosts are two OpenSSH servers started here on 127.0.0.1 (free ports, a host key
# and a client key of their own), named h1 and h2 in an ssh configuration that both runners
# use through `--ssh 'ssh -F cfg'`; the same sshlogin file lists them for both.
#
# Three cases; runners alternate within a round (drift in machine load hits both alike); each
# figure is the median of ROUNDS rounds:
#   1. N1 × `true`: the per-job cost of the transport (amorsize shares one connection per
#      host; GNU parallel opens one per job unless told otherwise);
#   2. N2 × `sleep 0.2` (the input goes to `:`, not to sleep): waiting work (GNU parallel
#      runs one job per CPU of each host);
#   3. N3 tiny inputs, `-X echo`: batches (amorsize sizes them against the round trip).
#
# Usage: crates/amorsize-cli/benches/ssh_vs.sh      (builds the release binary first)
# Env:   ROUNDS (3), N1 (200), N2 (40), N3 (20000), AMORSIZE (path to a built binary)
# Needs: /usr/sbin/sshd, ssh, ssh-keygen (Debian: openssh-server), GNU parallel.
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-3}
N1=${N1:-200}
N2=${N2:-40}
N3=${N3:-20000}

for need in /usr/sbin/sshd ssh ssh-keygen parallel; do
  if ! command -v "$need" >/dev/null; then
    echo "skipped: $need is missing (Debian: openssh-server, parallel)" >&2
    exit 0
  fi
done
if [[ -z "${AMORSIZE:-}" ]]; then
  cargo build --release -q -p amorsize-cli
  AMORSIZE=$PWD/target/release/amorsize
fi

lab=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$lab"
}
trap cleanup EXIT
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$lab/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$lab/client_key"
cp "$lab/client_key.pub" "$lab/authorized_keys"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
root=no
[[ $(id -u) == 0 ]] && root=yes
: >"$lab/ssh_config"
for k in 1 2; do
  port=$(free_port)
  cat >"$lab/sshd$k.conf" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $lab/host_key
AuthorizedKeysFile $lab/authorized_keys
PidFile $lab/sshd$k.pid
StrictModes no
UsePAM no
PasswordAuthentication no
PermitRootLogin $root
EOF
  /usr/sbin/sshd -D -e -f "$lab/sshd$k.conf" 2>"$lab/sshd$k.log" &
  pids+=($!)
  printf 'Host h%s\n  HostName 127.0.0.1\n  Port %s\n' "$k" "$port" >>"$lab/ssh_config"
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.05; done
done
cat >>"$lab/ssh_config" <<EOF
Host *
  IdentityFile $lab/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  BatchMode yes
  LogLevel ERROR
EOF
printf 'h1\nh2\n' >"$lab/hosts"
SSH="ssh -F $lab/ssh_config"

timed() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo "scale=4; ($t1 - $t0) / 1000000000" | bc
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }

declare -A RESULTS
run_case() {
  local name=$1 n=$2
  shift 2
  local labels=() cmds=()
  while (($#)); do labels+=("$1"); cmds+=("$2"); shift 2; done
  local tmp
  tmp=$(mktemp -d)
  for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!labels[@]}"; do
      timed bash -c "seq $n | ${cmds[$i]}" >>"$tmp/$i"
    done
  done
  printf '\n== %s\n' "$name"
  for i in "${!labels[@]}"; do
    RESULTS["$name/${labels[$i]}"]=$(median <"$tmp/$i")
    printf '  %-26s %8.3f s   (%s)\n' "${labels[$i]}" "${RESULTS["$name/${labels[$i]}"]}" "${cmds[$i]}"
  done
  rm -rf "$tmp"
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds, medians"
echo "hosts: h1, h2 (sshd on 127.0.0.1); $("$AMORSIZE" --version); $(parallel --version | head -n 1)"
rt0=$(date +%s%N); $SSH h1 true; rt1=$(date +%s%N)
echo "one ssh h1 true (new connection): $(echo "scale=3; ($rt1 - $rt0) / 1000000000" | bc) s"

c1="1: $N1 x true"
run_case "$c1" "$N1" \
  "amorsize run --slf" "$AMORSIZE run --ssh '$SSH' --slf $lab/hosts true" \
  "parallel --slf" "parallel --will-cite --ssh '$SSH' --slf $lab/hosts true"
c2="2: $N2 x sleep 0.2"
run_case "$c2" "$N2" \
  "amorsize run --slf" "$AMORSIZE run --ssh '$SSH' --slf $lab/hosts 'sleep 0.2; : {}'" \
  "parallel --slf" "parallel --will-cite --ssh '$SSH' --slf $lab/hosts 'sleep 0.2; : {}'"
c3="3: $N3 tiny inputs, -X echo"
run_case "$c3" "$N3" \
  "amorsize run --slf -X" "$AMORSIZE run --ssh '$SSH' --slf $lab/hosts -X echo" \
  "parallel --slf -X" "parallel --will-cite --ssh '$SSH' --slf $lab/hosts -X echo"

echo
echo "== ratios: GNU parallel's time / amorsize's (above 1: amorsize is faster)"
for c in "$c1" "$c2"; do
  echo "  $c: $(ratio "${RESULTS["$c/parallel --slf"]}" "${RESULTS["$c/amorsize run --slf"]}")"
done
echo "  $c3: $(ratio "${RESULTS["$c3/parallel --slf -X"]}" "${RESULTS["$c3/amorsize run --slf -X"]}")"
