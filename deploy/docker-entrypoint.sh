#!/bin/sh
# Entry point of the BrokerX image (web, workers, beat, migrate): every container starts with an empty
# prometheus_client multiprocess directory. Files left there by a previous run of the container (a restart keeps
# its filesystem) would otherwise be added to the new processes' counters.
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi
exec "$@"
