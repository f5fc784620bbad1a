#!/usr/bin/env bash
# Stop the single-node Slurm started by scripts/slurm/start.sh: exactly the daemons named in its pid files
# under $LEAD_HSR_SLURM_STATE (default /tmp/lead-hsr-slurm), nothing found by name. Idempotent.
#   --purge   also delete the state dir (configs, logs, accounting database)
set -euo pipefail

STATE=${LEAD_HSR_SLURM_STATE:-/tmp/lead-hsr-slurm}
export SLURM_CONF="$STATE/etc/slurm.conf"
PURGE=0
[ "${1:-}" = "--purge" ] && PURGE=1

log() { echo "[slurm stop $(date +%T)] $*"; }

# Stop the process in pid file $1 if it is alive and really is program $2 (a stale pid may be reused).
stop_daemon() {
    local pidfile="$STATE/run/$1.pid" name=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop in 10 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

# Cancel jobs still on this cluster so no slurmstepd outlives its slurmd.
if [ -s "$STATE/run/slurmctld.pid" ] && kill -0 "$(cat "$STATE/run/slurmctld.pid")" 2>/dev/null; then
    if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
        log "cancelling remaining jobs"
        scancel --full $(squeue -h -o %i) 2>/dev/null || true
        for _ in $(seq 50); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
fi

stop_daemon slurmd slurmd
stop_daemon slurmctld slurmctld
stop_daemon slurmdbd slurmdbd
stop_daemon mariadbd mariadbd
stop_daemon munged munged

# Remove the default-path link made by start.sh (only if it points at our config).
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF" ]; then
    rm -f /etc/slurm/slurm.conf
fi

if [ $PURGE = 1 ] && [ -d "$STATE" ]; then
    log "removing $STATE"
    rm -rf "$STATE"
fi
log "stopped"
