#!/usr/bin/env bash
# Installs the real tools the checker tests drive, from their registries, into one directory
# (ACAS_TOOLS_DIR, default ~/.cache/acas-tools) that `cargo xtask test` puts on PATH:
#   Ruff, mypy, pytest  PyPI, into a venv:        $ACAS_TOOLS_DIR/venv/bin
#   mcp (the MCP Python SDK that drives `acas mcp` in its tests): the same venv
#   TypeScript, ESLint,
#   Jest, Vitest        npm, into a prefix:       $ACAS_TOOLS_DIR/node/node_modules/.bin
#   Go                  Debian `golang-go`, when `go` is not on PATH (/usr/bin/go)
#   staticcheck         Debian `go-staticcheck`, when `staticcheck` is not on PATH
# Idempotent and quick when everything is there (pinned versions are compared, not reinstalled);
# quiet unless something fails.
set -euo pipefail

tools=${ACAS_TOOLS_DIR:-$HOME/.cache/acas-tools}
mkdir -p "$tools"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
quietly() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-checker-tools: '$*' failed" >&2
        exit 1
    fi
}

python_packages=(ruff==0.17.6 mypy==2.4.1 pytest==9.2.0 mcp==2.3.0)
node_packages=(typescript@6.0.3 eslint@10.16.0 jest@30.5.2 vitest@3.2.7)

venv=$tools/venv
if [[ ! -x $venv/bin/python ]]; then
    quietly python3 -m venv "$venv"
fi
stamp=$venv/.acas-installed
if [[ ! -e $stamp || $(cat "$stamp") != "${python_packages[*]}" ]]; then
    quietly "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
    echo "${python_packages[*]}" >"$stamp"
fi

node=$tools/node
stamp=$node/.acas-installed
if [[ ! -e $stamp || $(cat "$stamp") != "${node_packages[*]}" ]]; then
    mkdir -p "$node"
    quietly npm install --prefix "$node" --no-audit --no-fund --no-save "${node_packages[@]}"
    echo "${node_packages[*]}" >"$stamp"
fi

debian_packages=()
command -v go >/dev/null 2>&1 || debian_packages+=(golang-go)
command -v staticcheck >/dev/null 2>&1 || debian_packages+=(go-staticcheck)
if [[ ${#debian_packages[@]} -gt 0 ]]; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    quietly "${sudo[@]}" apt-get update -qq
    quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debian_packages[@]}"
fi
