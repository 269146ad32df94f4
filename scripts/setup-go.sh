#!/usr/bin/env bash
# Build the go-libp2p reference peers (interop/go: cmd/relay and cmd/peer) and print the directory
# that holds the two binaries, `relay` and `peer`.
#
# The binaries are cached outside the checkout, in $P2PDIAG_GO_CACHE (default
# ~/.cache/p2pdiag-go), under a key made of go.sum, go.mod, every .go file of interop/go and the Go
# version: a second run, or a fresh clone's CI run on the same machine, reuses them; any change to
# the pinned modules or the code builds anew. Modules come from the Go module proxy as pinned by
# the committed go.sum (-mod=readonly: a go.sum that does not match go.mod is an error, not an
# update).
#
# stdout: exactly one line, the binaries' directory. stderr: the build's output.
# Exit status non-zero, with a message saying why, when Go is missing or the build fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../interop/go" && pwd)"
cache="${P2PDIAG_GO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/p2pdiag-go}"

if ! command -v go >/dev/null 2>&1; then
  echo "setup-go.sh: go not found (the go-libp2p peers need Go 1.26 or newer on PATH)" >&2
  exit 1
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

key="$(cd "$src" && { go version; cat go.mod go.sum; find . -name '*.go' -type f | LC_ALL=C sort | xargs cat; } \
       | sha256sum | cut -c1-16)"
out="$cache/$key"
if [[ -x "$out/relay" && -x "$out/peer" ]]; then
  touch "$out"   # in use: kept by the clean-up below
  echo "$out"
  exit 0
fi

echo "setup-go.sh: building interop/go into $out" >&2
start=$(date +%s)
mkdir -p "$cache"
tmp="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$src" && go build -o "$tmp/" ./cmd/relay ./cmd/peer >&2); then
  echo "setup-go.sh: go build of interop/go failed (see above)" >&2
  exit 1
fi
# another run may have finished the same build meanwhile: either copy is good
mv -T "$tmp" "$out" 2>/dev/null || true
if [[ ! -x "$out/relay" || ! -x "$out/peer" ]]; then
  echo "setup-go.sh: $out/relay or $out/peer missing after the build" >&2
  exit 1
fi
echo "setup-go.sh: built in $(( $(date +%s) - start )) s" >&2
# builds of other keys unused for 30 days go (each holds two ~30 MB binaries)
find "$cache" -mindepth 1 -maxdepth 1 -type d -mtime +30 -exec rm -rf {} + 2>/dev/null || true
echo "$out"
