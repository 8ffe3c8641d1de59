#!/usr/bin/env bash
# The whole test suite on a machine that may have nothing running yet: brings up the local infrastructure it needs
# (Docker, a registry, Kubernetes, kind, istiod; see e2e/infra; idempotent, seconds when already up), points the
# tests at it and runs `npm test`. As root, like e2e/infra/infra.sh. `npm run test:all` runs it; so does .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash e2e/infra/infra.sh up
eval "$(bash e2e/infra/infra.sh env)"
exec npm test
