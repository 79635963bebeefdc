#!/usr/bin/env bash
# Time `make reproduce` the way a new user meets it: a fresh clone, no .venv, no model cache,
# no cached runs; then again with everything cached. Prints both wall-clock times.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/repo"
export TTC_CACHE="$work/cache"
cd "$work/repo"
t0=$(date +%s)
make reproduce > "$work/first.log" 2>&1 || { tail -30 "$work/first.log"; exit 1; }
t1=$(date +%s)
make reproduce > "$work/second.log" 2>&1 || { tail -30 "$work/second.log"; exit 1; }
t2=$(date +%s)
echo "make reproduce, fresh clone (venv + model conversion + all runs): $((t1 - t0)) s"
echo "make reproduce, everything cached:                               $((t2 - t1)) s"
echo "per notebook, fresh clone:"
grep -E '^ +outputs/.*\([0-9]+ s\)$' "$work/first.log" || true
