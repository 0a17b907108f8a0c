#!/usr/bin/env bash
# Quick start: installs what is missing, then runs Spool's main job.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
exec swift run -c release spool broker "$@"
