#!/usr/bin/env bash
# Benchmark: `tramontane scan --history` on a generated repository of 10,000 commits and
# 50,000 blobs, beside the floor every history scanner stands on: `git log -p --all` piped
# to `grep -E` for the same key shape. One warm-up run each to fill the page cache, then one
# measured run; wall time and peak resident memory from GNU time. gitleaks is measured too
# when it is on PATH.
#
# usage: crates/tramontane-cli/benches/scan/run.sh [COMMITS [FILES_PER_COMMIT]]
set -euo pipefail
cd "$(dirname "$0")/../../../.."  # the workspace root

commits=${1:-10000}
per_commit=${2:-5}
work=target/bench-scan
repo="$work/repo-$commits-$per_commit"
mkdir -p "$work"
if [ ! -d "$repo/.git" ]; then
  rm -rf "$repo"
  git init --quiet --initial-branch=main "$repo"
  python3 crates/tramontane-cli/benches/scan/generate.py "$commits" "$per_commit" \
    2>"$repo.planted" | git -C "$repo" fast-import --quiet
  git -C "$repo" checkout --quiet main
fi
planted=$(cat "$repo.planted")
blobs=$(git -C "$repo" rev-list --all --objects | git -C "$repo" cat-file --batch-check='%(objecttype) %(rest)' | grep -c '^blob ')
all_commits=$(git -C "$repo" rev-list --all | wc -l)

cargo build --release --quiet -p tramontane-cli

measure() { # prints "seconds kilobytes" of one run of the command
  /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/out" 2>/dev/null || true
  tail -n 1 "$work/time"
}

tramontane=(target/release/tramontane scan "$repo" --history --format json)
# The floor: every added line of every commit's diff, searched for a 32-character
# alphanumeric run after a key-ish name, counted once per distinct key. It finds only what
# a diff shows.
floor=(bash -c "git -C '$repo' log -p --all --no-color \
  | grep -oE '^[+].*(KEY|key)[^A-Za-z0-9]{1,6}[A-Za-z0-9]{32}' \
  | grep -oE '[A-Za-z0-9]{32}\$' | sort -u | wc -l")

"${tramontane[@]}" >/dev/null 2>&1 || true
read -r t_secs t_kb < <(measure "${tramontane[@]}")
t_found=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$work/out")
"${floor[@]}" >/dev/null 2>&1 || true
read -r f_secs f_kb < <(measure "${floor[@]}")
f_found=$(cat "$work/out")

printf 'repository: %s commits, %s blobs, %s planted keys (kept, deleted, on a branch, only in a merge)\n' \
  "$all_commits" "$blobs" "$planted"
printf '%-40s %10s %12s %8s\n' "" "wall (s)" "peak (MB)" "found"
printf '%-40s %10s %12s %8s\n' "tramontane scan --history" "$t_secs" "$((t_kb / 1024))" "$t_found"
printf '%-40s %10s %12s %8s\n' "git log -p --all | grep -E (floor)" "$f_secs" "$((f_kb / 1024))" "$f_found"
if command -v gitleaks >/dev/null; then
  gitleaks_cmd=(gitleaks git "$repo" --no-banner --report-format json --report-path "$work/gitleaks.json")
  read -r g_secs g_kb < <(measure "${gitleaks_cmd[@]}")
  g_found=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/gitleaks.json")
  printf '%-40s %10s %12s %8s\n' "gitleaks git" "$g_secs" "$((g_kb / 1024))" "$g_found"
else
  echo "gitleaks: not installed here"
fi
awk -v t="$t_secs" -v f="$f_secs" 'BEGIN { if (f > 0) printf "tramontane takes %.2fx the floor'"'"'s time\n", t / f }'
