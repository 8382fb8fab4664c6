#!/usr/bin/env bash
# `amorsize run` against `xargs -P` and GNU parallel, side by side in one run.
#
# Three cases, each a ratio between runners measured in the same rounds (runners alternate
# within a round, so drift in machine load hits all of them alike); each figure is the median
# of ROUNDS rounds:
#   1. N1 × a ~1 ms command (`true`), per-job overhead:
#        amorsize -j $(nproc) vs xargs -P $(nproc)          goal: amorsize ≤ 1.2 × xargs
#        amorsize (no flag) vs xargs -P $(nproc)             goal: ≥ parity
#   2. N2 × `sleep 0.05`, waiting work:
#        amorsize (no flag) vs xargs -P $(nproc)             goal: ≥ 8×
#        amorsize (no flag) vs amorsize -j $(nproc)          goal: ≥ 3×
#   3. N3 tiny inputs, batched:
#        amorsize -X vs GNU parallel -X                      goal: ≥ parity
#        amorsize {+} vs amorsize {} (one job each)          goal: ≥ 5×
# Then peak memory (RSS, from GNU time's %M) of `amorsize run -X true` over 1M and 10M input
# lines streamed from `seq`: bounded memory means about the same figure for both.
#
# Usage: crates/amorsize-cli/benches/run_vs.sh           (builds the release binary first)
# Env:   ROUNDS (3), N1 (2000), N2 (200), N3 (20000), RSS_LINES ("1000000 10000000"),
#        AMORSIZE (path to a built binary)
# Needs: xargs; GNU parallel when installed (Debian package `parallel`), skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-3}
N1=${N1:-2000}
N2=${N2:-200}
N3=${N3:-20000}
RSS_LINES=${RSS_LINES:-"1000000 10000000"}
CPUS=$(nproc)

if [[ -z "${AMORSIZE:-}" ]]; then
  cargo build --release -q -p amorsize-cli
  AMORSIZE=$PWD/target/release/amorsize
fi
HAVE_PARALLEL=0
if command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q GNU; then
  HAVE_PARALLEL=1
fi

# Seconds taken by "$@" (stdout and stderr discarded).
timed() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo "scale=4; ($t1 - $t0) / 1000000000" | bc
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# case_run NAME INPUT_COUNT -- then pairs of LABEL and COMMAND (a bash string reading stdin).
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
    printf '  %-34s %8.3f s   (%s)\n' "${labels[$i]}" "${RESULTS["$name/${labels[$i]}"]}" "${cmds[$i]}"
  done
  rm -rf "$tmp"
}

ratio() { echo "scale=2; $1 / $2" | bc; }

echo "machine: $CPUS CPUs; $ROUNDS rounds, medians; $("$AMORSIZE" --version)"

args=(
  "amorsize run (no flag)" "$AMORSIZE run -- true"
  "amorsize run -j $CPUS" "$AMORSIZE run -j $CPUS true"
  "xargs -P $CPUS -n 1" "xargs -P $CPUS -n 1 true"
)
((HAVE_PARALLEL)) && args+=("parallel -j $CPUS" "parallel --will-cite -j $CPUS true")
run_case "1: $N1 x true (~1 ms)" "$N1" "${args[@]}"

args=(
  "amorsize run (no flag)" "$AMORSIZE run -- sh -c 'sleep 0.05'"
  "amorsize run -j $CPUS" "$AMORSIZE run -j $CPUS -- sh -c 'sleep 0.05'"
  "xargs -P $CPUS -n 1" "xargs -P $CPUS -n 1 sh -c 'sleep 0.05'"
)
((HAVE_PARALLEL)) && args+=("parallel -j $CPUS" "parallel --will-cite -j $CPUS sh -c \\'sleep 0.05\\'")
run_case "2: $N2 x sleep 0.05" "$N2" "${args[@]}"

args=(
  "amorsize run echo {+}" "$AMORSIZE run -- echo {+}"
  "amorsize run -X echo" "$AMORSIZE run -X echo"
  "amorsize run echo {} (one per input)" "$AMORSIZE run -- echo {}"
  "xargs -P $CPUS echo (batches)" "xargs -P $CPUS echo"
)
((HAVE_PARALLEL)) && args+=("parallel -X echo" "parallel --will-cite -X echo")
run_case "3: $N3 tiny inputs" "$N3" "${args[@]}"

c1="1: $N1 x true (~1 ms)"
c2="2: $N2 x sleep 0.05"
c3="3: $N3 tiny inputs"
echo
echo "== ratios (higher is better for amorsize)"
echo "  1: amorsize -j $CPUS / xargs -P $CPUS   = $(ratio "${RESULTS["$c1/amorsize run -j $CPUS"]}" "${RESULTS["$c1/xargs -P $CPUS -n 1"]}")   (time ratio; goal <= 1.2)"
echo "  1: xargs -P $CPUS / amorsize          = $(ratio "${RESULTS["$c1/xargs -P $CPUS -n 1"]}" "${RESULTS["$c1/amorsize run (no flag)"]}")   (goal >= 1)"
echo "  2: xargs -P $CPUS / amorsize          = $(ratio "${RESULTS["$c2/xargs -P $CPUS -n 1"]}" "${RESULTS["$c2/amorsize run (no flag)"]}")   (goal >= 8)"
echo "  2: amorsize -j $CPUS / amorsize        = $(ratio "${RESULTS["$c2/amorsize run -j $CPUS"]}" "${RESULTS["$c2/amorsize run (no flag)"]}")   (goal >= 3)"
echo "  3: one job per input / {+} batches = $(ratio "${RESULTS["$c3/amorsize run echo {} (one per input)"]}" "${RESULTS["$c3/amorsize run echo {+}"]}")   (goal >= 5)"
if ((HAVE_PARALLEL)); then
  echo "  1: parallel -j $CPUS / amorsize       = $(ratio "${RESULTS["$c1/parallel -j $CPUS"]}" "${RESULTS["$c1/amorsize run (no flag)"]}")"
  echo "  2: parallel -j $CPUS / amorsize       = $(ratio "${RESULTS["$c2/parallel -j $CPUS"]}" "${RESULTS["$c2/amorsize run (no flag)"]}")"
  echo "  3: parallel -X / amorsize -X      = $(ratio "${RESULTS["$c3/parallel -X echo"]}" "${RESULTS["$c3/amorsize run -X echo"]}")   (goal >= 1)"
fi

echo
echo "== peak memory, inputs streamed from seq (GNU time %M)"
if [[ -x /usr/bin/time ]]; then
  for n in $RSS_LINES; do
    out=$(mktemp)
    t0=$(date +%s%N)
    seq "$n" | /usr/bin/time -f '%M' -o "$out" "$AMORSIZE" run -X true
    t1=$(date +%s%N)
    printf '  %10d lines: peak RSS %6d KiB, %6.1f s   (seq %d | amorsize run -X true)\n' \
      "$n" "$(tail -n 1 "$out")" "$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc)" "$n"
    rm -f "$out"
  done
else
  echo "  skipped: /usr/bin/time (GNU time, Debian package \`time\`) is not installed"
fi
