#!/usr/bin/env bash
# Stop the cluster started by tests/slurm/start_cluster.sh: cancel its jobs,
# then stop slurmd, slurmctld and (only if start_cluster.sh started it) munged,
# each by the PID in its pid file; finally remove the slurm.conf / gres.conf
# that start_cluster.sh wrote. Every wait is bounded; safe to call twice.
#
# Why remove the config: while /etc/slurm/slurm.conf names a controller that
# is down, `scontrol show config` blocks ~9 s, and the slurm executor plugin
# runs it when Snakemake imports the plugin, i.e. on EVERY snakemake call,
# local runs included. Without a config it fails at once.
set -uo pipefail

STATE=${LAYERPUZZLE_SLURM_STATE:-/run/layerpuzzle-slurm}
MARKER="# written by layerpuzzle tests/slurm/start_cluster.sh"
CONF_DIR=/etc/slurm

log() { echo "[stop_cluster] $*" >&2; }

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
    local name=$1 pidfile=$2 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 30); do
            alive "$pid" || break
            sleep 0.5
        done
        if alive "$pid"; then
            log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
}

# Jobs first: a running job's slurmstepd outlives slurmd, so cancel and wait
# (bounded) for the queue to drain while the daemons are still up.
if [[ -f $STATE/slurmctld.pid ]] && alive "$(cat "$STATE/slurmctld.pid")"; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        log "cancelling jobs: $(echo $jobs)"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 1 20); do
            [[ -z $(timeout 5 squeue -h -t R,CG,PD -o %i 2>/dev/null) ]] && break
            sleep 1
        done
    fi
fi

stop_pid slurmd "$STATE/slurmd.pid"
stop_pid slurmctld "$STATE/slurmctld.pid"
stop_pid munged "$STATE/munged.pid"   # absent when munged was not ours

for conf in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"; do
    if [[ -f $conf ]] && grep -qF "$MARKER" "$conf"; then
        rm -f "$conf"
    fi
done
exit 0
