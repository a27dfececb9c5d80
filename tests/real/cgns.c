/* cgns: run a command in a new cgroup namespace (busybox unshare has no -C).
 *
 *   cgns [-m|-r] COMMAND [ARG...]
 *
 * Without -m the process keeps the inherited cgroup mounts, whose roots now show as "/..".
 * With -m it also gets a new mount namespace in which /sys/fs/cgroup is replaced by a fresh
 * cgroup2 mount rooted at the namespace's root cgroup (what container runtimes do); -r
 * mounts it read-only (what they do for a container that is not privileged).
 * Build: gcc -static -O2 -o cgns cgns.c
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/mount.h>

static int die(const char *what) {
    fprintf(stderr, "cgns: %s: %s\n", what, strerror(errno));
    return 125;
}

int main(int argc, char **argv) {
    int fresh = 0;
    unsigned long ro = 0;
    if (argc > 1 && (strcmp(argv[1], "-m") == 0 || strcmp(argv[1], "-r") == 0)) {
        fresh = 1;
        ro = argv[1][1] == 'r' ? MS_RDONLY : 0;
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: cgns [-m|-r] COMMAND [ARG...]\n");
        return 125;
    }
    if (unshare(CLONE_NEWCGROUP | (fresh ? CLONE_NEWNS : 0)) != 0)
        return die("unshare");
    if (fresh) {
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            return die("make / rprivate");
        if (umount2("/sys/fs/cgroup", MNT_DETACH) != 0)
            return die("umount /sys/fs/cgroup");
        if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) != 0)
            return die("mount cgroup2 /sys/fs/cgroup");
    }
    execvp(argv[1], argv + 1);
    return die(argv[1]);
}
