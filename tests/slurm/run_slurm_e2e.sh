#!/usr/bin/env bash
# End-to-end test of profiles/slurm on a real single-node SLURM cluster with
# one fake GPU (started here, stopped on exit whatever happens). Needs root.
#
#   tests/slurm/run_slurm_e2e.sh SNAKEFILE_DIR [SNAKEMAKE_ARGS...]
#
# Runs, inside SNAKEFILE_DIR (the working directory: relative paths in
# SNAKEMAKE_ARGS are relative to it),
#   snakemake --profile <repo>/profiles/slurm SNAKEMAKE_ARGS...
# under a bounded `timeout`, then checks with `scontrol show job` that every
# submitted job whose rule declares `gpu` > 0 requested a GPU from SLURM and
# every other job requested none (tests/slurm/check_gpu_requests.py).
#
# Examples (from the repo root):
#   E2E_EXPECT_GPU_RULES=gpu_probe tests/slurm/run_slurm_e2e.sh tests/slurm/toy --forceall all_tables
#   tests/slurm/run_slurm_e2e.sh . --configfile config/tiny.yaml all_tables
#
# Environment:
#   E2E_TIMEOUT_S         bound on the snakemake run in seconds (default 1800)
#   E2E_EXPECT_GPU_RULES  comma-separated rules that must be exactly the GPU jobs
#   E2E_LOG               main Snakemake log (default SNAKEFILE_DIR/logs/slurm_e2e/snakemake.log)
#   SNAKEMAKE             snakemake executable (default: <repo>/.venv/bin/snakemake, else PATH)
#   LAYERPUZZLE_SLURM_*   passed on to start_cluster.sh / stop_cluster.sh
#
# Exit status: 0 pass; 1 cluster or snakemake failed (124: snakemake timed out);
# 3 GPU-request check failed; 4 the check could not run; 64 bad usage.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

log() { echo "[run_slurm_e2e] $*" >&2; }

if [[ $# -lt 1 || ! -d $1 ]]; then
    sed -n '2,27p' "${BASH_SOURCE[0]}" >&2
    exit 64
fi
WORKDIR=$(cd "$1" && pwd)
shift
TIMEOUT_S=${E2E_TIMEOUT_S:-1800}
LOG=${E2E_LOG:-$WORKDIR/logs/slurm_e2e/snakemake.log}
if [[ -z ${SNAKEMAKE:-} ]]; then
    if [[ -x $REPO/.venv/bin/snakemake ]]; then
        SNAKEMAKE=$REPO/.venv/bin/snakemake
    else
        SNAKEMAKE=snakemake
    fi
fi
# the checker needs only the standard library
PYTHON=$(dirname "$(command -v "$SNAKEMAKE")")/python
[[ -x $PYTHON ]] || PYTHON=python3

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    "$HERE/stop_cluster.sh"
    log "done in ${SECONDS}s, exit $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/start_cluster.sh" || { log "cluster did not start"; exit 1; }
log "cluster up after ${SECONDS}s"

mkdir -p "$(dirname "$LOG")"
log "running in $WORKDIR: snakemake --profile $REPO/profiles/slurm $* (timeout ${TIMEOUT_S}s)"
start=$SECONDS
# Test-only overrides: no need to wait for accounting, local disk.
(cd "$WORKDIR" && timeout -k 30 "$TIMEOUT_S" "$SNAKEMAKE" \
    --profile "$REPO/profiles/slurm" \
    --slurm-init-seconds-before-status-checks 2 \
    --latency-wait 5 \
    "$@") 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
log "snakemake exit $rc after $(( SECONDS - start ))s (log: $LOG)"
if [[ $rc -ne 0 ]]; then
    [[ $rc -eq 124 ]] && log "snakemake TIMED OUT after ${TIMEOUT_S}s"
    timeout 10 squeue || true
    exit "$rc"
fi

check_args=("$LOG")
[[ -n ${E2E_EXPECT_GPU_RULES:-} ]] && check_args+=(--expect-gpu-rules "$E2E_EXPECT_GPU_RULES")
timeout 300 "$PYTHON" "$HERE/check_gpu_requests.py" "${check_args[@]}"
case $? in
    0) log "PASS: GPU requests match the rules' gpu resources" ;;
    1) log "FAIL: GPU requests do not match"; exit 3 ;;
    *) log "FAIL: GPU check could not run"; exit 4 ;;
esac
exit 0
