#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster on this machine, for testing
# profiles/slurm (README, "Running on a SLURM cluster").
#
#   sudo tests/slurm/start_cluster.sh        # needs root; ~15 s (+13 s apt)
#   sudo tests/slurm/stop_cluster.sh
#
# The node has this host's CPUs, min(20000 MB, RAM - 1 GB) of memory and ONE
# FAKE GPU (gres.conf File=/dev/null): a job that asks for a GPU gets
# CUDA_VISIBLE_DEVICES=0, a second GPU job waits, a 2-GPU request is rejected.
# No accounting daemon: use `slurm-status-command: squeue`. MinJobAge=3600 s
# keeps finished jobs visible to squeue and `scontrol show job` for an hour,
# which is what run_slurm_e2e.sh checks the GPU requests with.
#
# Environment knobs:
#   LAYERPUZZLE_SLURM_STATE      state dir (pid files, spool, daemon logs);
#                                default /run/layerpuzzle-slurm
#   LAYERPUZZLE_SLURM_CPUS       CPUs of the node; default $(nproc)
#   LAYERPUZZLE_SLURM_OVERWRITE  1 = overwrite an /etc/slurm/slurm.conf that
#                                this script did not write (refused otherwise)
#   LAYERPUZZLE_SLURM_WAIT_S     seconds to wait for the node to be idle (60)
#
# Every wait is bounded. Exit status: 0 cluster up, 1 start failed,
# 2 not root, 3 foreign slurm.conf present.
set -euo pipefail

STATE=${LAYERPUZZLE_SLURM_STATE:-/run/layerpuzzle-slurm}
WAIT_S=${LAYERPUZZLE_SLURM_WAIT_S:-60}
MARKER="# written by layerpuzzle tests/slurm/start_cluster.sh"
CONF_DIR=/etc/slurm

log() { echo "[start_cluster] $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    log "must run as root (starts munged, slurmctld, slurmd)"
    exit 2
fi

# --- 1. packages -------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm + munge via apt"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 600 apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# --- 2. configuration --------------------------------------------------------
NODE=$(hostname -s)
CPUS=${LAYERPUZZLE_SLURM_CPUS:-$(nproc)}
MEM_TOTAL_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=$(( MEM_TOTAL_MB - 1024 < 20000 ? MEM_TOTAL_MB - 1024 : 20000 ))

mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d"
if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf" \
    && [[ ${LAYERPUZZLE_SLURM_OVERWRITE:-0} != 1 ]]; then
    log "$CONF_DIR/slurm.conf exists and was not written by this script;"
    log "refusing to overwrite it (set LAYERPUZZLE_SLURM_OVERWRITE=1 to force)"
    exit 3
fi

cat >"$CONF_DIR/slurm.conf" <<EOF
$MARKER
ClusterName=layerpuzzle
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to squeue / scontrol for an hour (the plugin's
# squeue status query needs >= 3 x its initial wait, else it tries sacct)
MinJobAge=3600
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

cat >"$CONF_DIR/gres.conf" <<EOF
$MARKER
AutoDetect=off
NodeName=$NODE Name=gpu File=/dev/null
EOF
log "wrote $CONF_DIR/slurm.conf (node $NODE: $CPUS CPUs, $MEM_MB MB, 1 fake GPU)"

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- 3. munge ----------------------------------------------------------------
MUNGE_PID=/run/munge/munged.pid
mkdir -p /run/munge
chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
fi
if alive "$MUNGE_PID"; then
    log "munged already running (pid $(cat "$MUNGE_PID")); leaving it alone"
else
    su -s /bin/bash munge -c "/usr/sbin/munged --pid-file=$MUNGE_PID"
    # stop_cluster.sh stops munged only when this file says we started it
    cp "$MUNGE_PID" "$STATE/munged.pid"
fi
for _ in $(seq 1 20); do
    if timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
        break
    fi
    sleep 0.5
done
timeout 5 munge -n | timeout 5 unmunge >/dev/null || { log "munge does not work"; exit 1; }

# --- 4. slurm daemons --------------------------------------------------------
# -c: start slurmctld from a clean state (no jobs left from an earlier run)
if alive "$STATE/slurmctld.pid"; then
    log "slurmctld already running (pid $(cat "$STATE/slurmctld.pid"))"
else
    timeout 30 /usr/sbin/slurmctld -c
fi
if alive "$STATE/slurmd.pid"; then
    log "slurmd already running (pid $(cat "$STATE/slurmd.pid"))"
else
    timeout 30 /usr/sbin/slurmd -N "$NODE"
fi

# --- 5. wait (bounded) until the node is idle ---------------------------------
deadline=$(( SECONDS + WAIT_S ))
state=""
while (( SECONDS < deadline )); do
    state=$(timeout 5 sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    if [[ $state == idle* ]]; then
        log "node $NODE is $state after ${SECONDS}s"
        timeout 5 sinfo || true
        exit 0
    fi
    sleep 1
done
log "node $NODE not idle after ${WAIT_S}s (state: '${state}')"
tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
exit 1
