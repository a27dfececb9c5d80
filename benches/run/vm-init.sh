#!/bin/sh
# /init of the benchmark VM (built by common.sh): cgroup v2 with a cgroup `bench` limited to
# LIMIT_MIB, a RAM disk of that size for page cache, then `sh /measure.sh LINE` for each line
# of /bench.args; the results go to the serial console, then it powers off.
# shellcheck disable=SC1091 # PATH and the mounts, written by vm_root (tests/real/lib.sh)
. /mounts.sh
# shellcheck disable=SC1091 # LIMIT_MIB STEP_KIB STEP_MS, written by common.sh
. /bench.conf
insmod /brd.ko rd_nr=1 rd_size=$((LIMIT_MIB * 1024)) || echo "BENCH insmod brd failed"
C=/sys/fs/cgroup
echo +memory >$C/cgroup.subtree_control
mkdir $C/bench
echo $((LIMIT_MIB * 1048576)) >$C/bench/memory.max
export KM=/kubemem GROW=/grow CG=$C/bench CGV=v2 WORK=/tmp STEP_KIB STEP_MS
while read -r args; do
    # shellcheck disable=SC2086 # a list of arguments
    sh /measure.sh $args
done </bench.args
echo "BENCH done"
poweroff -f
