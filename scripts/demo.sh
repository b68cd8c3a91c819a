#!/usr/bin/env bash
# demo.sh: build the bundled example workspace with chefd and run the image.
# Makes sure a Docker engine answers and the offline builder image exists first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

scripts/ensure-engine.sh
scripts/builder-image.sh
go build -o bin/chefd ./cmd/chefd
bin/chefd -C examples/workspace build
echo "--- docker run --rm chefd-example:dev"
docker run --rm chefd-example:dev
