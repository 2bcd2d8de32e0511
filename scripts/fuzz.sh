#!/usr/bin/env bash
# Fuzzes the guest engine's pure decoders with cargo-fuzz (libFuzzer), one target after another.
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 600)] [TARGET...]   (default: every target)
# Targets (guest/fuzz/fuzz_targets/): segment, deleted_docs, meta_json, npy_roundtrip.
# Exits non-zero when a target crashes (panic, failed check, sanitizer report, timeout or OOM);
# the input that did it is kept under guest/fuzz/artifacts/<target>/, the growing corpus under
# guest/fuzz/corpus/<target>/ (both ignored by git; seeds in guest/fuzz/seeds/<target>/).
# Reproduce a crash: scripts/fuzz.sh repro TARGET ARTIFACT
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. The build goes to a target dir of its own, outside the checkout,
# and the fuzzers run under nice, one process each (the machine has 2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz_dir="$root/guest/fuzz"
all_targets=(segment deleted_docs meta_json npy_roundtrip)

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/milvus-migration/fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"

if [ "${1:-}" = repro ]; then
  [ $# -eq 3 ] || { echo "usage: $0 repro TARGET ARTIFACT" >&2; exit 2; }
  exec cargo fuzz run "$2" "$3"
fi

seconds=${1:-600}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS_PER_TARGET must be a number, got '$seconds'" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
done

# One build for every target, niced like the runs.
nice -n 19 cargo fuzz build

summary=()
failed=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  args=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=30)
  [ -f "seeds/$t.dict" ] && args+=(-dict="seeds/$t.dict")
  dirs=("$corpus")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  log="artifacts/$t/last-run.log"
  echo "== $t: ${seconds}s (log: guest/fuzz/$log)"
  start=$(date +%s)
  set +e
  # One job, one worker: a single in-process fuzzer (no libFuzzer -jobs/-fork children).
  nice -n 19 cargo fuzz run --jobs 1 "$t" "${dirs[@]}" -- "${args[@]}" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
  [ -n "$runs" ] || runs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  crash=$(grep -E 'Test unit written to|SUMMARY: |panicked at' "$log" | head -3 || true)
  if [ $rc -eq 0 ]; then
    verdict="no crash"
  else
    verdict="CRASHED (exit $rc)"
    failed=1
    tail -40 "$log" >&2
  fi
  line="$t: ${elapsed}s, ${runs:-?} runs, $verdict"
  echo "== $line"
  [ -n "$crash" ] && [ $rc -ne 0 ] && echo "$crash"
  summary+=("$line")
done

echo
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit $failed
