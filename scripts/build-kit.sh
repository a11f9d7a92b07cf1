#!/usr/bin/env bash
# Builds the validation kit's migbench for a lent GPU machine (x86-64, no Rust toolchain): the
# release binary, stripped, in .kit/ (ignored by git, so it travels only when carried), with
# .kit/build.txt saying what it was built from. Checks that the working tree and the kit fit the
# machine's 64 MiB, and prints the device tool call that runs the kit.
#
# Usage: scripts/build-kit.sh        (from anywhere in the repository)
#
# Environment: KIT_LIMIT_MIB, what tree and kit may take together (default 60: the machine takes
# 64 MiB, and results written into the tree before the call travel too).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
limit_mib="${KIT_LIMIT_MIB:-60}"

fail() {
    printf 'build-kit: %s\n' "$1" >&2
    exit 1
}

[ "$(uname -m)" = x86_64 ] || fail "the lent machines are x86-64 and this one is $(uname -m)"
cargo build --release --locked
mkdir -p .kit
strip -o .kit/migbench.new target/release/migbench
mv .kit/migbench.new .kit/migbench
chmod +x .kit/migbench

# The newest glibc symbol version the binary needs: the lent machine's glibc must be as new.
glibc="$(objdump -T .kit/migbench | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -n 1 || true)"
{
    echo "migbench kit: $(.kit/migbench --version)"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), $(rustc --version)"
    echo "needs: ${glibc:-no versioned glibc symbol} or newer"
} >.kit/build.txt

kit_bytes="$(du -cb .kit/* | tail -n 1 | cut -f1)"
tree_bytes="$(git ls-files --cached --others --exclude-standard -z | du -cb --files0-from=- |
    tail -n 1 | cut -f1)"
total=$((kit_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
cat .kit/build.txt
echo "build-kit: .kit is $(mib "$kit_bytes"), the tree that travels with it $(mib "$tree_bytes"):" \
    "$(mib "$total") of the $limit_mib MiB allowed"
[ "$total" -le $((limit_mib * 1048576)) ] || fail "too big to travel: $(mib "$total")"

cat <<'EOF'
build-kit: run the kit on the lent machine with one device tool call:
  run(command: "bash scripts/gpu-validate.sh", carry: [".kit"], timeout_s: 600)
It writes 7 files into $OUT (summary.md is the section for docs/validation.md) and prints the
summary at its end.
EOF
