#!/usr/bin/env bash
# The test command: installs the Debian packages the tests need, then runs
# every test, unit and integration (network namespaces, real clients, QEMU).
# Integration tests need root; with CI=true a missing tool fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/deps.sh; fi
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
go version
go vet ./...
go test -count=1 -timeout 45m ./... "$@"
