#!/bin/bash -eu
# Builds the cargo-fuzz targets in fuzz/ into $OUT, each with its seed corpus
# ($OUT/<target>_seed_corpus.zip, from corpus/<target>/) and libFuzzer options
# ($OUT/<target>.options).
#
# Inside ClusterFuzzLite / OSS-Fuzz (base-builder-rust) the checkout is
# $SRC/tcpconform and SANITIZER, CARGO_BUILD_TARGET are set by the builder.
# Outside Docker every variable has a default:
#   SRC                 parent of $SRC/tcpconform; unset: this script's checkout
#   OUT                 required (where binaries and corpora go)
#   SANITIZER           address (default) | none | memory | coverage
#   CARGO_BUILD_TARGET  x86_64-unknown-linux-gnu
set -euo pipefail

if [ -z "${OUT:-}" ]; then
  echo "build.sh: OUT is not set (the directory the fuzz binaries go to)" >&2
  exit 2
fi
if [ -n "${SRC:-}" ] && [ -f "$SRC/tcpconform/fuzz/Cargo.toml" ]; then
  # -P: the real path, so that a symlinked checkout reuses fuzz/target.
  root="$(cd "$SRC/tcpconform" && pwd -P)"
else
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fi
[ -f "$root/fuzz/Cargo.toml" ] || { echo "build.sh: no fuzz/Cargo.toml under $root" >&2; exit 2; }
target="${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}"
mkdir -p "$OUT"

# cargo-fuzz needs nightly features; the stable toolchain allows them with
# RUSTC_BOOTSTRAP (the builder image's nightly ignores it).
export RUSTC_BOOTSTRAP=1
sanitizer_args=()
case "${SANITIZER:-address}" in
  address | none | memory) sanitizer_args=(--sanitizer "${SANITIZER:-address}") ;;
  # The builder image's cargo wrapper adds the coverage instrumentation.
  coverage) ;;
  *) echo "build.sh: unsupported SANITIZER=${SANITIZER}" >&2; exit 2 ;;
esac

cd "$root/fuzz"
cargo fuzz build -O "${sanitizer_args[@]}" --target "$target" --target-dir "$root/fuzz/target"

for bin in $(cargo fuzz list); do
  cp "target/$target/release/$bin" "$OUT/"
  seeds="$root/corpus/$bin"
  if [ -d "$seeds" ]; then
    rm -f "$OUT/${bin}_seed_corpus.zip"
    # -j: flat archive (regressions/ included); -q: quiet; -X: no extra attributes.
    (cd "$seeds" && find . -type f -print | zip -q -j -X "$OUT/${bin}_seed_corpus.zip" -@)
  fi
done

# The parser's inputs are text scripts: longer ones only slow it down.
printf '[libfuzzer]\nmax_len = 4096\n' >"$OUT/script_parse.options"
