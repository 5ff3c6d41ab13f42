#!/usr/bin/env bash
# Regenerates the README's state diagram from the table (needs graphviz).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --bin tcpconform -- spec --format dot --profile rfc9293 > docs/state-diagram.dot
dot -Tsvg docs/state-diagram.dot > docs/state-diagram.svg
echo "wrote docs/state-diagram.dot and docs/state-diagram.svg"
