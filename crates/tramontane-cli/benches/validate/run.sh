#!/usr/bin/env bash
# Benchmark: `tramontane validate` against check-jsonschema on the same generated
# repository and the same schema. One run each, after one warm-up run to fill the page
# cache; wall time and peak resident memory from GNU time.
#
# usage: crates/tramontane-cli/benches/validate/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../../.."  # the workspace root

work=target/bench-validate
rm -rf "$work/policies"
mkdir -p "$work"
python3 crates/tramontane-cli/benches/validate/generate.py "$work/policies"
files=$(find "$work/policies" -name '*.yaml' | wc -l)
bytes=$(find "$work/policies" -name '*.yaml' -exec cat {} + | wc -c)

cargo build --release --quiet -p tramontane-cli
if [ ! -x "$work/venv/bin/check-jsonschema" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet check-jsonschema
fi

measure() { # prints "seconds kilobytes" of one run of the command
  /usr/bin/time -o "$work/time" -f '%e %M' "$@" >/dev/null 2>&1 || true
  tail -n 1 "$work/time"
}

tramontane=(target/release/tramontane validate --policies "$work/policies")
mapfile -t yaml_files < <(find "$work/policies" -name '*.yaml' | sort)
checker=("$work/venv/bin/check-jsonschema" --schemafile schema/policy.schema.json "${yaml_files[@]}")

"${tramontane[@]}" >/dev/null || { echo "the generated repository must validate" >&2; exit 1; }
"${checker[@]}" >/dev/null || { echo "check-jsonschema rejected the generated repository" >&2; exit 1; }

read -r t_secs t_kb < <(measure "${tramontane[@]}")
read -r c_secs c_kb < <(measure "${checker[@]}")

printf 'repository: %s files, %s bytes (1,000 workspaces x 10 keys, 5,000 members, 200 teams)\n' "$files" "$bytes"
printf '%-36s %10s %12s\n' "" "wall (s)" "peak (MB)"
printf '%-36s %10s %12s\n' "tramontane validate" "$t_secs" "$((t_kb / 1024))"
printf '%-36s %10s %12s\n' "check-jsonschema (schema only)" "$c_secs" "$((c_kb / 1024))"
awk -v t="$t_secs" -v c="$c_secs" 'BEGIN { if (t > 0) printf "tramontane is %.0fx faster, and also runs the semantic checks\n", c / t }'
