# tests/bench/moongate.sh: sourced by the benchmarks' run scripts.
# bench_moongate ROOT: the binary to measure — $MOONGATE when set, else the release build in
# ROOT/build (built by scripts/setup when missing). Never a sanitizer build found by a glob:
# its figures would mean nothing.
bench_moongate() {
  local root=$1
  if [ -n "${MOONGATE:-}" ]; then
    [ -x "$MOONGATE" ] || { echo "bench: MOONGATE=$MOONGATE is not executable" >&2; return 1; }
    echo "$MOONGATE"
    return
  fi
  [ -x "$root/build/moongate" ] || "$root/scripts/setup" "$root/build" >&2 || return 1
  echo "$root/build/moongate"
}
