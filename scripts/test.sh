#!/usr/bin/env bash
# Runs every test: the whole suite on SQLite, then the same suite on a throwaway PostgreSQL.
# pytest exits non-zero when it collects no tests, so an empty run never counts as success.
set -uo pipefail
cd "$(dirname "$0")/.."
echo "==> Lint (ruff)"
ruff check . || { echo "cf_portal lint failed (ruff check .)" >&2; exit 1; }
status=0
for db in sqlite postgres; do
  echo "==> Test suite on $db"
  if ! DB=$db python -m pytest "$@"; then
    echo "cf_portal tests failed on $db" >&2
    status=1
  fi
done
exit $status
