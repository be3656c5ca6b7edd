#!/usr/bin/env bash
# Prepares the VS Code end-to-end test (vscode-extension `npm run test:e2e`) on Debian: the
# packages code-server's native modules and the test need, a local ripgrep archive for
# @vscode/ripgrep (its postinstall would download one from GitHub), and code-server plus
# playwright-core in vscode-extension/e2e. Idempotent; quiet unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
quietly() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup-e2e: '$*' failed" >&2
        exit 1
    fi
}

packages=(libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev ripgrep chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    quietly "${sudo[@]}" apt-get update -qq
    quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# @vscode/ripgrep's postinstall looks for $TMPDIR/vscode-ripgrep-cache-<its version>/<asset>
# and untars it with `tar xf`, expecting `rg` at the archive's top level.
rg_version=1.15.11
rg_asset=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz
rg_cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$rg_version"
if [[ $(uname -m) == x86_64 && ! -s "$rg_cache/$rg_asset" ]]; then
    mkdir -p "$rg_cache"
    tar czf "$rg_cache/$rg_asset.part" -C "$(dirname "$(command -v rg)")" rg
    mv "$rg_cache/$rg_asset.part" "$rg_cache/$rg_asset"
fi

cd vscode-extension/e2e
if [[ ! -x node_modules/.bin/code-server || package-lock.json -nt node_modules/.package-lock.json ]]; then
    quietly env npm_config_yes=true npm_config_unsafe_perm=true npm_config_audit=false npm_config_fund=false npm ci
fi
