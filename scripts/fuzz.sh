#!/usr/bin/env bash
# Fuzz every target in fuzz/ for a bounded time and fail on any crash.
#
#   scripts/fuzz.sh [SECONDS]          # default 30 seconds per target
#   FUZZ_TARGETS="connection utf8" scripts/fuzz.sh 60
#
# Steps: install cargo-fuzz if missing; check the fuzz crate's formatting; run its stable tests
# (the committed seeds are exactly what fuzz/src/seeds.rs generates, and every corpus file passes
# its target's checks); build every target once; run each with -max_total_time, starting from
# the committed seeds (fuzz/corpus/<target>, read only) plus a working corpus kept in
# fuzz/target/corpus/<target> (gitignored, so local runs build on earlier ones while CI starts
# from the seeds). Prints, per target: executions, coverage (libFuzzer's cov and ft), crashes.
#
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 allows them on this stable toolchain.
# It is set on the `cargo fuzz` commands only, whose builds go to fuzz/target, so every other
# build stays plain stable.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
root=$PWD
target_dir=$root/fuzz/target
# No sanitizer: the code under test is safe Rust (src/protocol is #![forbid(unsafe_code)]), so
# AddressSanitizer would mostly halve the executions. Debug assertions and overflow checks on.
build_flags=(--release --debug-assertions --sanitizer none --target-dir "$target_dir")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "--- installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

echo "--- fmt (fuzz crate)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

echo "--- seed and oracle tests (stable)"
cargo test --manifest-path fuzz/Cargo.toml --target-dir "$target_dir/tests" --quiet

targets=${FUZZ_TARGETS:-$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list)}

echo "--- build"
RUSTC_BOOTSTRAP=1 cargo fuzz build "${build_flags[@]}"

results=()
failed=0
for t in $targets; do
  work=$target_dir/corpus/$t
  artifacts=$target_dir/artifacts/$t/
  log=$target_dir/logs/$t.log
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  before=$(find "$artifacts" -type f | wc -l)
  echo "--- $t: ${seconds}s"
  set +e
  # A target without committed seeds starts from its working corpus alone.
  seeds=()
  [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
  RUSTC_BOOTSTRAP=1 cargo fuzz run "${build_flags[@]}" "$t" "$work" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$artifacts" >"$log" 2>&1
  rc=$?
  set -e
  crashes=$(($(find "$artifacts" -type f | wc -l) - before))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ] || [ -z "$done_line" ]; then
    failed=1
    crashes=$((crashes > 0 ? crashes : 1))
    echo "!!! $t failed (exit $rc); the end of $log:"
    grep -E 'panicked|SUMMARY|Test unit written|^(assertion|  left|  right)' "$log" | head -20 || true
    tail -5 "$log"
    echo "reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $t <artifact>"
  fi
  results+=("$(printf '%-18s %12s %8s %8s %8s' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes")")
done

echo "--- fuzz results (${seconds}s per target)"
printf '%-18s %12s %8s %8s %8s\n' target executions cov ft crashes
printf '%s\n' "${results[@]}"
exit "$failed"
