#!/bin/sh
# /init of the cgroup v2 test VM (busybox initramfs built by run.sh).  Sets up cgroup v2 and
# runs scenarios.sh in five layouts, lead.sh (the --lead scenarios), and node.sh (the node
# agent's scenarios) when run.sh put it in; results go to the serial console, then it powers
# off.
# shellcheck disable=SC1091 # PATH and the mounts, written by vm_root (tests/real/lib.sh)
. /mounts.sh
echo "GUEST init at uptime $(cut -d' ' -f1 /proc/uptime) s"

. /vm.conf   # LIMIT ANC_LIMIT NS_LIMIT CACHE_MIB, written by run.sh

# page cache that is not tmpfs: a brd RAM disk; reading it fills the block device's page cache
insmod /brd.ko rd_nr=1 rd_size=$((CACHE_MIB * 1024)) || echo "GUEST insmod brd failed"

C=/sys/fs/cgroup
echo +memory >$C/cgroup.subtree_control
mkdir $C/km $C/kmpar $C/kmns
echo "$LIMIT" >$C/km/memory.max              # the cgroup the scenarios run in
echo "$ANC_LIMIT" >$C/kmpar/memory.max       # a limited parent ...
echo +memory >$C/kmpar/cgroup.subtree_control
mkdir $C/kmpar/child                         # ... with an unlimited child
echo "$NS_LIMIT" >$C/kmns/memory.max         # root of a cgroup namespace (ancestor case)

export KM=/kubemem HOG=/hog CGV=v2 WORK=/tmp TMPFS_DIR=/tmp CACHE_FILE=/dev/ram0 LIMIT

# 1. plain cgroup v2: the shell moves itself into km; kubemem run can create a PSI trigger
KM_ENV=vm CG=$C/km OUTSIDE=$C ANC_CHILD=$C/kmpar/child ANC_DIR=$C/kmpar ANC_LIMIT=$ANC_LIMIT \
    RUN="run run-events" \
    sh -c 'echo $$ >/sys/fs/cgroup/km/cgroup.procs && exec sh /scenarios.sh'

# 2. a cgroup namespace rooted at km with a fresh, read-only cgroup2 mount (what runtimes do
#    for a container that is not privileged): the process sees 0::/ and its own cgroup at
#    /sys/fs/cgroup, and kubemem run cannot write a PSI trigger: memory.events only
KM_ENV=vm-cgns CG=$C WAKEUP=memory.events \
    sh -c 'echo $$ >/sys/fs/cgroup/km/cgroup.procs && exec /cgns -r sh /scenarios.sh below verbose warning failure pagecache pagecache-total tmpfs run run-events'

# 3. a cgroup namespace rooted at kmns (limited); the process then moves into an unlimited
#    child, so the limit is on the namespace root = the mount point
KM_ENV=vm-cgns ANC_CHILD='' ANC_DIR=$C ANC_LIMIT=$NS_LIMIT CG=$C/child \
    sh -c 'echo $$ >/sys/fs/cgroup/kmns/cgroup.procs && exec /cgns -m sh -c "mkdir /sys/fs/cgroup/child && echo \$\$ >/sys/fs/cgroup/child/cgroup.procs && echo +memory >/sys/fs/cgroup/cgroup.subtree_control && exec sh /scenarios.sh ancestor"'

# 4. a cgroup namespace without a fresh mount: the inherited mount's root is "/.."
KM_ENV=vm-cgns-nomount CG=$C/km \
    sh -c 'echo $$ >/sys/fs/cgroup/km/cgroup.procs && exec /cgns sh /scenarios.sh no-mount'

# the node agent against the test API server, below the v2 root, with the in-cluster
# configuration (TLS over loopback); before 5, whose remount changes memory.events for all
if [ -f /node.sh ]; then
    ip link set lo up || echo "GUEST ip link set lo up failed"
    echo "GUEST node start at uptime $(cut -d' ' -f1 /proc/uptime) s"
    KM_ENV=vm NODE_BIN=/kubemem-node API=/apiserver CGV=v2 WORK=/tmp/node BASE=$C ROOT_ARG='' \
        IN_CLUSTER=1 SLOW=4 sh /node.sh
    echo "GUEST node done at uptime $(cut -d' ' -f1 /proc/uptime) s"
fi

# the --lead scenarios (lead.sh) below a cgroup of their own; before 5 too
echo "GUEST lead start at uptime $(cut -d' ' -f1 /proc/uptime) s"
mkdir $C/kmlead /tmp/lead-state
# (TOL: on one emulated CPU shared by five workloads a sample of kubemem run's can come a
# tenth of a second late, and with it the signal)
KM_ENV=vm KM=/kubemem LEAK=/leak CGV=v2 WORK=/tmp/lead TMPFS_DIR=/tmp/lead-state BASE=$C/kmlead TOL=0.2 \
    sh /lead.sh
echo "GUEST lead done at uptime $(cut -d' ' -f1 /proc/uptime) s"

# 5. PSI alone: memory.events counts local events only (memory_localevents, a flag of the
#    whole hierarchy, so this comes last), kubemem runs in kmpsi/sup below the limited kmpsi
#    and its hog moves to kmpsi/app, whose memory.high lies between 90% and the limit
mount -o remount,memory_localevents none $C || echo "GUEST remount with memory_localevents failed"
mkdir $C/kmpsi
echo "$LIMIT" >$C/kmpsi/memory.max
echo +memory >$C/kmpsi/cgroup.subtree_control
mkdir $C/kmpsi/sup $C/kmpsi/app
echo $((LIMIT * 92 / 100)) >$C/kmpsi/app/memory.high
KM_ENV=vm-psi CG=$C/kmpsi/sup LIMIT_DIR=$C/kmpsi PSI_APP=$C/kmpsi/app \
    sh -c 'echo $$ >/sys/fs/cgroup/kmpsi/sup/cgroup.procs && exec sh /scenarios.sh run-psi'

echo "GUEST done at uptime $(cut -d' ' -f1 /proc/uptime) s"
poweroff -f
