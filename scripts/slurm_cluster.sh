#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests of `ttc run --executor slurm` (make slurm-up).
#   scripts/slurm_cluster.sh up   [DIR]   install slurm-wlm and munge if missing (apt, as root), write DIR/slurm.conf
#                                         and start munged, slurmctld and slurmd; prints `export SLURM_CONF=...`
#   scripts/slurm_cluster.sh down [DIR]   stop slurmd and slurmctld (munged is left: other users may need it)
#   scripts/slurm_cluster.sh install      only install slurm-wlm and munge if missing (make test does this)
# DIR defaults to /tmp/ttc-slurm. Ports 16817/16818 (not SLURM's defaults, so a real cluster's are untouched).
# proctrack/linuxproc and task/none: no cgroups needed, so it runs inside a container.
set -euo pipefail
cmd=${1:-up}
dir=${2:-/tmp/ttc-slurm}
conf=$dir/etc/slurm.conf
node=$(hostname)

down() {
  for d in slurmd slurmctld; do
    if [ -f "$dir/run/$d.pid" ]; then kill "$(cat "$dir/run/$d.pid")" 2>/dev/null || true; fi
  done
  for _ in $(seq 20); do
    [ -f "$dir/run/slurmd.pid" ] && kill -0 "$(cat "$dir/run/slurmd.pid")" 2>/dev/null && sleep 0.5 && continue
    [ -f "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null && sleep 0.5 && continue
    break
  done
}

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ]; then echo "slurm-wlm and munge are not installed and this is not root: apt-get install slurm-wlm munge" >&2; exit 1; fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

if [ "$cmd" = down ]; then down; exit 0; fi
if [ "$cmd" = install ]; then install; exit 0; fi
[ "$cmd" = up ] || { echo "usage: $0 up|down|install [DIR]" >&2; exit 2; }
install
mkdir -p "$dir"/{etc,state,spool,log,run}
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
cat > "$conf" <<CONF
ClusterName=ttc
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
MinJobAge=600
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$node CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  runuser -u munge -- munged 2>/dev/null || munged --force
  sleep 1
fi
down
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 60); do
  if sinfo -h -o %t 2>/dev/null | grep -q idle; then echo "export SLURM_CONF=$conf"; exit 0; fi
  sleep 0.5
done
echo "SLURM did not come up: see $dir/log/slurmctld.log and $dir/log/slurmd.log" >&2
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
exit 1
