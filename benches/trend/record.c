/* The recorder of the working-set traces that chose the --lead estimator (benches/trend.rs,
 * DESIGN.md): a workload in a cgroup, and its working set sampled every 100 ms.
 *
 *   record DIR MODE ARGS... >TRACE
 *
 *   leak RATE_MIB_S BASE_MIB        BASE at once, then RATE (a step every 20 ms on a fixed
 *                                   schedule); the recording stops short of the limit
 *   flat PERCENT DELAY_MS           nothing for DELAY_MS, then PERCENT of the limit at once
 *                                   (also the start-up step)
 *   saw LOW HIGH PERIOD_MS          LOW percent at once, then over each period HIGH - LOW
 *                                   percent more, linearly, given back at its end
 *                                   (MADV_DONTNEED), like a garbage collector's heap
 *   spike BASE PEAK AT_MS HOLD_MS   BASE percent, PEAK percent once at AT_MS for HOLD_MS
 *   cache FILE ANON_MIB HOLD_MS GONE_MS
 *                                   ANON_MIB held; then again and again FILE read twice (the
 *                                   second read makes its pages active: working set), kept
 *                                   HOLD_MS, dropped (POSIX_FADV_DONTNEED), GONE_MS without
 *
 * DIR is a cgroup v1 memory cgroup with a limit. The workload runs in a child process that
 * moves itself into DIR; this process stays outside and samples DIR every 100 ms (on a fixed
 * schedule) the way kubemem counts: memory.usage_in_bytes - total_inactive_file (the working
 * set) against memory.limit_in_bytes. One line per sample on standard output:
 *
 *   MS USED LIMIT
 *
 * MS: CLOCK_MONOTONIC milliseconds since the recording began (the child's fork), at the
 * read. The recording lasts DURATION_S (environment, default 60) or, for a leak, until the
 * working set is within 3 MiB or two samples' growth of the limit (the later of 250 MiB and
 * 1.5 s before the limit at 2 MiB/s: a probe once a second with a 3 s lead acts up to 4 s
 * before, so the trace must go on to 3 s before); a leak's trace then ends with a comment
 *
 *   # limit_at_ms=N
 *
 * when the limit would have been reached at RATE from the last sample. The child is killed
 * at the end. Build: gcc -O2 -Wall -static -o record record.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB 1048576ULL
#define PAGE 4096
#define STEP_NS 20000000LL
#define SAMPLE_NS 100000000LL

static const char *dir;

static void die(const char *what, const char *where) {
    fprintf(stderr, "record: %s %s: %s\n", what, where, strerror(errno));
    exit(2);
}

static int64_t now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_until(int64_t at) {
    struct timespec t = {at / 1000000000, at % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {
    }
}

static int open_in(const char *name, int flags) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) die("open", path);
    return fd;
}

/* The whole file from offset 0, NUL-terminated. */
static char *reread(int fd, char *buf, size_t size) {
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n < 0) die("read", "a cgroup file");
    buf[n] = 0;
    return buf;
}

static uint64_t number(int fd) {
    char buf[64];
    return strtoull(reread(fd, buf, sizeof buf), NULL, 10);
}

static int usage_fd, limit_fd, stat_fd;

static uint64_t stat_key(const char *key) {
    static char buf[16384];
    const char *s = reread(stat_fd, buf, sizeof buf);
    size_t len = strlen(key);
    for (;;) {
        if (strncmp(s, key, len) == 0 && s[len] == ' ') return strtoull(s + len + 1, NULL, 10);
        s = strchr(s, '\n');
        if (!s) return 0;
        s++;
    }
}

/* As kubemem counts it (src/measure.rs): usage less the inactive page cache. */
static uint64_t working_set(void) {
    uint64_t usage = number(usage_fd), inact = stat_key("total_inactive_file");
    return usage > inact ? usage - inact : 0;
}

/* ---- the workloads (in the child, inside DIR) --------------------------------------------- */

static char *arena;
static size_t touched;

/* Writes the arena's pages up to `to` bytes (they are charged to the cgroup). */
static void touch_to(size_t to) {
    for (; touched < to; touched += PAGE) arena[touched] = 1;
}

/* Touches a MiB at a time until the working set is `percent` of the limit. */
static void grow_to_percent(unsigned percent) {
    uint64_t target = number(limit_fd) / 100 * percent, ws = working_set();
    /* most of it at once (a read of memory.stat per MiB would make it a ramp) */
    if (ws + 4 * MIB < target) touch_to(touched + (target - ws - 4 * MIB) / PAGE * PAGE);
    while (working_set() < target) touch_to(touched + MIB);
}

static size_t pct_bytes(unsigned percent) { return number(limit_fd) / 100 * percent; }

static void hold(void) {
    for (;;) pause();
}

/* A second arena given back with MADV_DONTNEED: the heap a collector frees. */
static char *extra;
static size_t extra_touched;
static void extra_to(size_t to) {
    for (; extra_touched < to; extra_touched += PAGE) extra[extra_touched] = 1;
}
static void extra_free(void) {
    if (madvise(extra, extra_touched, MADV_DONTNEED) != 0) die("madvise", "DONTNEED");
    extra_touched = 0;
}

static void read_all(int fd) {
    static char buf[1 << 16];
    ssize_t n;
    if (lseek(fd, 0, SEEK_SET) < 0) die("lseek", "the cache file");
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    if (n < 0) die("read", "the cache file");
}

static void workload(char **argv) {
    const char *mode = argv[0];
    arena = mmap(NULL, 512 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    extra = mmap(NULL, 512 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED || extra == MAP_FAILED) die("mmap", "the arena");
    int64_t start = now();
    if (strcmp(mode, "leak") == 0 && argv[1] && argv[2]) {
        uint64_t rate = strtoull(argv[1], NULL, 10) * MIB, base = strtoull(argv[2], NULL, 10) * MIB;
        touch_to(base);
        int64_t t0 = now();
        for (int64_t at = t0;; at += STEP_NS) {
            sleep_until(at);
            size_t to = base + (uint64_t)((now() - t0) / 1000) * rate / 1000000;
            /* the recording stops before; never reach the limit (no OOM kill) */
            if (to > 254 * MIB) hold();
            touch_to(to);
        }
    } else if (strcmp(mode, "flat") == 0 && argv[1] && argv[2]) {
        sleep_until(start + strtoll(argv[2], NULL, 10) * 1000000);
        grow_to_percent(atoi(argv[1]));
        hold();
    } else if (strcmp(mode, "saw") == 0 && argv[1] && argv[2] && argv[3]) {
        grow_to_percent(atoi(argv[1]));
        size_t span = pct_bytes(atoi(argv[2]) - atoi(argv[1]));
        int64_t period = strtoll(argv[3], NULL, 10) * 1000000;
        for (int64_t p0 = now();; p0 += period) {
            for (int64_t at = p0; at < p0 + period; at += STEP_NS) {
                sleep_until(at);
                extra_to(span * (uint64_t)(at + STEP_NS - p0) / (uint64_t)period);
            }
            sleep_until(p0 + period);
            extra_free();
        }
    } else if (strcmp(mode, "spike") == 0 && argv[1] && argv[2] && argv[3] && argv[4]) {
        grow_to_percent(atoi(argv[1]));
        sleep_until(start + strtoll(argv[3], NULL, 10) * 1000000);
        extra_to(pct_bytes(atoi(argv[2]) - atoi(argv[1])));
        sleep_until(now() + strtoll(argv[4], NULL, 10) * 1000000);
        extra_free();
        hold();
    } else if (strcmp(mode, "cache") == 0 && argv[1] && argv[2] && argv[3] && argv[4]) {
        int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open", argv[1]);
        touch_to(strtoull(argv[2], NULL, 10) * MIB);
        int64_t keep = strtoll(argv[3], NULL, 10) * 1000000, gone = strtoll(argv[4], NULL, 10) * 1000000;
        for (;;) {
            /* dropped first, so that the read is charged to this cgroup */
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            read_all(fd);
            read_all(fd);
            sleep_until(now() + keep);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            sleep_until(now() + gone);
        }
    }
    fprintf(stderr, "record: bad workload %s\n", mode);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: record DIR MODE ARGS... (see record.c)\n");
        return 2;
    }
    dir = argv[1];
    usage_fd = open_in("memory.usage_in_bytes", O_RDONLY);
    limit_fd = open_in("memory.limit_in_bytes", O_RDONLY);
    stat_fd = open_in("memory.stat", O_RDONLY);
    int leak = strcmp(argv[2], "leak") == 0;
    const char *d = getenv("DURATION_S");
    int64_t duration = (d ? strtoll(d, NULL, 10) : 60) * 1000000000;
    int64_t t0 = now();
    pid_t pid = fork();
    if (pid < 0) die("fork", "");
    if (pid == 0) {
        char me[32];
        int fd = open_in("cgroup.procs", O_WRONLY);
        int n = snprintf(me, sizeof me, "%d\n", getpid());
        if (write(fd, me, n) != n) die("write", "cgroup.procs");
        close(fd);
        workload(argv + 2);
    }
    double rate = leak && argv[3] ? strtod(argv[3], NULL) * MIB : 0;
    uint64_t margin = 2 * (uint64_t)(rate / 10) > 3 * MIB ? 2 * (uint64_t)(rate / 10) : 3 * MIB;
    int64_t at = t0, ms = 0;
    uint64_t used = 0, limit = 0;
    for (; at - t0 <= duration; at += SAMPLE_NS) {
        sleep_until(at);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "record: the workload ended (status %#x)\n", status);
            return 1;
        }
        used = working_set();
        limit = number(limit_fd);
        ms = (now() - t0) / 1000000;
        printf("%lld %llu %llu\n", (long long)ms, (unsigned long long)used, (unsigned long long)limit);
        if (leak && used + margin >= limit) break;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (leak) {
        if (used + margin < limit) {
            fprintf(stderr, "record: the leak did not come close to the limit\n");
            return 1;
        }
        printf("# limit_at_ms=%lld\n", (long long)(ms + (int64_t)((double)(limit - used) / rate * 1000)));
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
