/* The allocator of the reaction-time benchmark (reaction.sh): grows at a known rate under
 * `kubemem run` and times the SIGTERM it gets.
 *
 *   grow DIR v1|v2 FAILURE_PERCENT STEP_KIB STEP_MS CAP_PERCENT OUT [CACHE_FILE]
 *
 * With CACHE_FILE it first reads that file to its end (after POSIX_FADV_DONTNEED, so that
 * the page cache is charged to this cgroup) and keeps it open: page cache then fills the
 * cgroup. After a random pause of up to 100 ms (the default interval: so that the crossing
 * falls at a random point between two of kubemem's samples, not at the same one in every
 * run), every STEP_MS, it writes STEP_KIB more of private anonymous memory and
 * samples the cgroup DIR the way kubemem counts: usage minus inactive page cache
 * (memory.current - inactive_file on v2, memory.usage_in_bytes - total_inactive_file on v1)
 * against the limit (memory.max, memory.limit_in_bytes). It stops growing at CAP_PERCENT
 * and waits there.
 *
 * Times are CLOCK_MONOTONIC. The crossing is the start of the step after which a sample
 * first showed FAILURE_PERCENT reached: the threshold was crossed within that step, not
 * before it began, so the reaction reported is never shorter than the real one, and longer
 * by at most the time the step took to write its memory (reported as touch_us). The SIGTERM
 * handler records the arrival time; the program then writes one line to OUT and exits 143:
 *
 *   reaction_us=N touch_us=N crossed_percent=P.P grown_mib=N rate_mib_s=N crossed_at=S.US
 *
 * crossed_at is the crossing on CLOCK_REALTIME (Unix seconds), for the node agent's benchmark
 * (benches/node/run.sh): there the reaction ends at the eviction request another process
 * records, on that clock, and the SIGTERM only tells grow to write its line.
 * reaction_us=none when SIGTERM came before the threshold was reached (kubemem acted on
 * something else). Without a SIGTERM within 5 s of reaching the cap it writes
 * `reaction_us=none error=no SIGTERM` and exits 1.
 * Build: gcc -O2 -static -o grow grow.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t termed;
static struct timespec term_at;

/* clock_gettime is async-signal-safe (POSIX.1-2008). */
static void on_term(int sig) {
    (void)sig;
    clock_gettime(CLOCK_MONOTONIC, &term_at);
    termed = 1;
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ns(t);
}

static void die(const char *what, const char *where) {
    fprintf(stderr, "grow: %s %s: %s\n", what, where, strerror(errno));
    exit(2);
}

static int open_in(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
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

/* A number file; "max" (v2, no limit) is the largest value. */
static uint64_t number(int fd) {
    char buf[64];
    const char *s = reread(fd, buf, sizeof buf);
    return strncmp(s, "max", 3) == 0 ? UINT64_MAX : strtoull(s, NULL, 10);
}

/* The value of the memory.stat line KEY. */
static uint64_t stat_key(int fd, const char *key) {
    static char buf[16384];
    const char *s = reread(fd, buf, sizeof buf);
    size_t len = strlen(key);
    for (;;) {
        if (strncmp(s, key, len) == 0 && s[len] == ' ') return strtoull(s + len + 1, NULL, 10);
        s = strchr(s, '\n');
        if (!s) return 0;
        s++;
    }
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: grow DIR v1|v2 FAILURE_PERCENT STEP_KIB STEP_MS CAP_PERCENT OUT [CACHE_FILE]\n");
        return 2;
    }
    const char *dir = argv[1];
    int v1 = strcmp(argv[2], "v1") == 0;
    uint64_t failure_pct = strtoull(argv[3], NULL, 10), cap_pct = strtoull(argv[6], NULL, 10);
    size_t step = strtoull(argv[4], NULL, 10) * 1024;
    int64_t step_ns = (int64_t)strtoll(argv[5], NULL, 10) * 1000000;
    const char *out = argv[7];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    if (sigaction(SIGTERM, &sa, NULL) != 0) die("sigaction", "SIGTERM");

    int usage_fd = open_in(dir, v1 ? "memory.usage_in_bytes" : "memory.current");
    int limit_fd = open_in(dir, v1 ? "memory.limit_in_bytes" : "memory.max");
    int stat_fd = open_in(dir, "memory.stat");
    const char *inactive = v1 ? "total_inactive_file" : "inactive_file";

    if (argc > 8) {
        int fd = open(argv[8], O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open", argv[8]);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        static char chunk[1 << 20];
        ssize_t n;
        while ((n = read(fd, chunk, sizeof chunk)) > 0) {}
        if (n < 0) die("read", argv[8]);
        /* kept open: a block device drops its page cache at the last close */
    }

    uint64_t limit = number(limit_fd);
    uint64_t failure = limit / 100 * failure_pct, cap = limit / 100 * cap_pct;
    char *mem = mmap(NULL, limit, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap", "the allocation");

    unsigned pause_ms = 0;
    if (getrandom(&pause_ms, sizeof pause_ms, 0) != sizeof pause_ms) die("getrandom", "pause");
    struct timespec pause = {0, (long)(pause_ms % 100) * 1000000};
    nanosleep(&pause, NULL);

    size_t grown = 0;
    int64_t start = now(), next = start, crossed = -1, touch = 0, deadline = -1;
    struct timespec began_at, crossed_at = {0, 0};
    uint64_t crossed_used = 0;
    size_t crossed_grown = 0;
    while (!termed) {
        int64_t began = now();
        clock_gettime(CLOCK_REALTIME, &began_at);
        if (deadline < 0 && grown + step <= limit) {
            for (size_t i = 0; i < step; i += 4096) mem[grown + i] = 1;
            grown += step;
        }
        int64_t touched = now();
        uint64_t usage = number(usage_fd), inact = stat_key(stat_fd, inactive);
        uint64_t used = usage > inact ? usage - inact : 0;
        if (crossed < 0 && used >= failure) {
            crossed = began;
            crossed_at = began_at;
            crossed_used = used;
            crossed_grown = grown;
            touch = touched - began;
        }
        if (deadline < 0 && used >= cap) deadline = now() + 5000000000LL;
        if (deadline >= 0 && now() > deadline) break;
        next += deadline < 0 ? step_ns : 10000000;
        struct timespec t = {next / 1000000000, next % 1000000000};
        while (!termed && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
    }
    int64_t end = termed ? ns(term_at) : now();

    FILE *f = fopen(out, "w");
    if (!f) die("open", out);
    double secs = (double)(crossed - start) / 1e9, mib = (double)crossed_grown / 1048576.0;
    if (!termed)
        fprintf(f, "reaction_us=none error=no SIGTERM within 5 s of reaching %llu%%\n",
                (unsigned long long)cap_pct);
    else if (crossed < 0)
        fprintf(f, "reaction_us=none error=SIGTERM before %llu%%\n", (unsigned long long)failure_pct);
    else
        fprintf(f, "reaction_us=%lld touch_us=%lld crossed_percent=%.1f grown_mib=%.1f rate_mib_s=%.0f crossed_at=%lld.%06ld\n",
                (long long)((end - crossed) / 1000), (long long)(touch / 1000),
                100.0 * (double)crossed_used / (double)limit, mib, secs > 0 ? mib / secs : 0.0,
                (long long)crossed_at.tv_sec, crossed_at.tv_nsec / 1000);
    if (fclose(f) != 0) die("write", out);
    return termed ? 143 : 1;
}
