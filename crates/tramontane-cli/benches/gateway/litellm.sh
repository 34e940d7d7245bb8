#!/usr/bin/env bash
# The gateway bench with LiteLLM's proxy measured beside the gateway: same mock, same load,
# same run, its rows in the same table (`cargo bench --bench gateway` with
# TRAMONTANE_BENCH_PEER=litellm). The first run installs LiteLLM into a venv under the
# target directory (`python3 -m venv`, `pip install 'litellm[proxy]'`; LITELLM_VERSION pins
# a version). Not part of CI: it needs Python 3 and PyPI.
#
#   crates/tramontane-cli/benches/gateway/litellm.sh
#
# Other variables of the bench pass through, e.g. TRAMONTANE_BENCH_STORE=local for the
# Redis rows.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/litellm-venv"

if [ ! -x "$venv/bin/litellm" ]; then
    echo "installing litellm[proxy]${LITELLM_VERSION:+==$LITELLM_VERSION} into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "litellm[proxy]${LITELLM_VERSION:+==$LITELLM_VERSION}"
fi
echo "peer: litellm $("$venv/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p'), $("$venv/bin/python3" --version)"

cd "$root"
TRAMONTANE_BENCH_PEER=litellm TRAMONTANE_BENCH_LITELLM="$venv/bin/litellm" \
    exec cargo bench -p tramontane-cli --bench gateway
