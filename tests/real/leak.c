/* The workloads of the --lead scenarios (scenarios.sh, lead-*) and benchmark
 * (benches/run/lead.sh): memory that grows, holds or saws at a known rate in a cgroup with
 * a limit, and says what it saw when SIGTERM came.
 *
 *   leak DIR OUT leak RATE_MIB_S BASE_MIB
 *   leak DIR OUT flat PERCENT [RAMP_MS]
 *   leak DIR OUT sawtooth LOW_PERCENT HIGH_PERCENT PERIOD_MS
 *   leak DIR OUT oomchild HOLD_S
 *
 * DIR is the cgroup directory the process runs in (v2 if it has memory.current, else v1);
 * its working set is read the way kubemem counts it: usage minus inactive page cache
 * (memory.current - inactive_file; v1 memory.usage_in_bytes - total_inactive_file), against
 * its limit (memory.max; v1 memory.limit_in_bytes or hierarchical_memory_limit, the
 * smaller). Lines go to the file OUT (appended, one write each, so that a line written
 * before an OOM kill is there after it). Memory is private anonymous, written a page at a
 * time so that it is really charged; times are CLOCK_MONOTONIC, printed ones CLOCK_REALTIME
 * (Unix seconds).
 *
 * leak: writes BASE_MIB at once (MADV_POPULATE_WRITE), then grows at RATE_MIB_S, a step every 20 ms on a fixed
 * schedule (a step that came late catches up, so that the rate over any second is RATE).
 * At SIGTERM it writes at once
 *   term_at=T ws=BYTES limit=BYTES percent=P rate_mib_s=R left_s=S base_s=S leak_s=S
 * where left_s = (limit - ws) / rate is the time the limit would have been reached at RATE
 * from the moment SIGTERM arrived (base_s: time BASE took; leak_s: time from then to
 * SIGTERM), and then shuts down for 2 s, still growing at RATE (an application's shutdown
 * does not stop its leak), writes `shutdown=done t=T ws=BYTES` and exits 0. An OOM kill
 * during the shutdown leaves no shutdown line. Without a SIGTERM it grows into the limit.
 *
 * flat: grows to PERCENT of the limit (linearly over RAMP_MS when given: a start-up that
 * takes a while; else at once), tops up a MiB at a time until the working set is there,
 * writes `flat ws=BYTES percent=P` and holds.
 * sawtooth: grows to LOW_PERCENT likewise, then over each PERIOD_MS grows linearly by
 * (HIGH - LOW) percent of the limit (a step every 20 ms) and gives that back at the period's
 * end (MADV_DONTNEED: the pages go back to the kernel and the cgroup's usage falls), writes
 * `sawtooth low=BYTES high=BYTES` after the first period and holds that pattern.
 * Both: at SIGTERM they write a term_at line (as above, with left_s=none) and exit 0.
 *
 * oomchild: ignores SIGTERM (kubemem run's failure action must not end it; the child
 * inherits that), forks a child that raises its oom_score_adj to 1000 (so that the OOM
 * killer picks it whatever else runs in the cgroup) and writes memory until the kernel
 * kills it, up to twice the limit. The parent stays small, waits for it, writes
 * `child=killed signal=N` (or `child=exited status=N` when it was not killed), lives HOLD_S
 * more seconds and exits 0.
 *
 * Build: gcc -O2 -static -o leak leak.c */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB 1048576ULL
#define PAGE 4096
#define STEP_NS 20000000LL

static volatile sig_atomic_t termed;
static struct timespec term_mono, term_real;

/* clock_gettime is async-signal-safe (POSIX.1-2008). */
static void on_term(int sig) {
    (void)sig;
    clock_gettime(CLOCK_MONOTONIC, &term_mono);
    clock_gettime(CLOCK_REALTIME, &term_real);
    termed = 1;
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ns(t);
}

static void sleep_until(int64_t at) {
    struct timespec t = {at / 1000000000, at % 1000000000};
    /* a signal cuts the sleep short, so that SIGTERM is seen at once */
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
}

static void die(const char *what, const char *where) {
    fprintf(stderr, "leak: %s %s: %s\n", what, where, strerror(errno));
    exit(2);
}

static const char *dir;
static int v1, out_fd, usage_fd, limit_fd, stat_fd;

static int open_in(const char *name) {
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

/* The value of the memory.stat line KEY (0 when absent). */
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

static uint64_t working_set(void) {
    uint64_t usage = number(usage_fd), inact = stat_key(v1 ? "total_inactive_file" : "inactive_file");
    return usage > inact ? usage - inact : 0;
}

static uint64_t limit(void) {
    uint64_t l = number(limit_fd);
    if (v1) {
        uint64_t h = stat_key("hierarchical_memory_limit");
        if (h && h < l) l = h;
    }
    return l;
}

/* One line to OUT in one write (appended: several processes may share the file). */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    if (write(out_fd, line, (size_t)n) != n) die("write", "OUT");
}

static char *mem;
static size_t mem_size, touched;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Write the pages up to TO (bytes from the start of the mapping). */
static void touch_to(size_t to) {
    if (to > mem_size) to = mem_size;
    for (; touched < to; touched += PAGE) mem[touched] = 1;
}

/* The same in one system call: the kernel faults the pages in itself (Linux 5.14), without
 * a page fault each, which under qemu's TCG takes seconds for a couple of hundred MiB. A
 * start-up that took that long would be a ramp over a third of kubemem's window: growth,
 * not the step these workloads mean it to be. Used for every step (less CPU in the VM). */
static void populate_to(size_t to) {
    if (to > mem_size) to = mem_size;
    to = to / PAGE * PAGE;
    if (to > touched && madvise(mem + touched, to - touched, MADV_POPULATE_WRITE) == 0) touched = to;
    touch_to(to);
}

static void map(uint64_t lim) {
    /* twice the limit: room to grow past it (it is never all written; the kernel kills first) */
    mem_size = (size_t)(2 * lim);
    mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap", "the allocation");
}

/* Grow until the working set is PCT percent of LIM: what is missing at once, then a MiB at
 * a time (what the kernel charges besides the pages: page tables, this process). */
static void grow_to_percent(double pct, uint64_t lim) {
    uint64_t target = (uint64_t)((double)lim * pct / 100.0), ws = working_set();
    if (ws < target) populate_to(touched + (size_t)(target - ws));
    while (!termed && working_set() < target && touched + MIB <= mem_size) touch_to(touched + MIB);
}

static void term_line(uint64_t lim, double rate, const char *extra) {
    uint64_t ws = working_set();
    char left[32] = "none";
    if (rate > 0) snprintf(left, sizeof left, "%.3f", ((double)lim - (double)ws) / (rate * (double)MIB));
    out("term_at=%lld.%06ld ws=%llu limit=%llu percent=%.1f rate_mib_s=%g left_s=%s%s", (long long)term_real.tv_sec,
        term_real.tv_nsec / 1000, (unsigned long long)ws, (unsigned long long)lim, 100.0 * (double)ws / (double)lim,
        rate, left, extra);
}

static int leak(double rate, double base_mib, uint64_t lim) {
    int64_t t0 = now();
    populate_to((size_t)(base_mib * MIB));
    int64_t t1 = now(), next = t1, shutdown_end = -1;
    double per_ns = rate * MIB / 1e9;
    while (shutdown_end < 0 || now() < shutdown_end) {
        if (termed && shutdown_end < 0) {
            char extra[96];
            snprintf(extra, sizeof extra, " base_s=%.3f leak_s=%.3f", (double)(t1 - t0) / 1e9,
                     (double)(ns(term_mono) - t1) / 1e9);
            term_line(lim, rate, extra);
            /* the 2 s shutdown, still leaking */
            shutdown_end = ns(term_mono) + 2000000000LL;
        }
        populate_to((size_t)(base_mib * MIB + per_ns * (double)(now() - t1)));
        next += STEP_NS;
        sleep_until(next);
    }
    struct timespec r;
    clock_gettime(CLOCK_REALTIME, &r);
    out("shutdown=done t=%lld.%06ld ws=%llu", (long long)r.tv_sec, r.tv_nsec / 1000,
        (unsigned long long)working_set());
    return 0;
}

static int flat(double pct, int64_t ramp_ns, uint64_t lim) {
    if (ramp_ns > 0) {
        /* a start-up that takes RAMP: linear growth to the level, then none */
        uint64_t ws = working_set(), target = (uint64_t)((double)lim * pct / 100.0);
        size_t need = target > ws ? (size_t)(target - ws) : 0;
        int64_t start = now(), next = start;
        while (!termed && now() - start < ramp_ns) {
            populate_to((size_t)((double)need * (double)(now() - start) / (double)ramp_ns));
            next += STEP_NS;
            sleep_until(next);
        }
    }
    grow_to_percent(pct, lim);
    uint64_t ws = working_set();
    out("flat ws=%llu percent=%.1f", (unsigned long long)ws, 100.0 * (double)ws / (double)lim);
    while (!termed) pause();
    term_line(lim, 0, "");
    return 0;
}

static int sawtooth(double low, double high, int64_t period_ns, uint64_t lim) {
    grow_to_percent(low, lim);
    size_t floor = touched, amplitude = (size_t)((double)lim * (high - low) / 100.0);
    uint64_t lo = working_set(), hi = 0;
    int64_t start = now(), next = start, cycles = 0;
    while (!termed) {
        int64_t t = now(), cycle = (t - start) / period_ns;
        if (cycle > cycles) {
            /* the period's end: give the growth back */
            if (cycles == 0) out("sawtooth low=%llu high=%llu", (unsigned long long)lo, (unsigned long long)hi);
            madvise(mem + floor, touched - floor, MADV_DONTNEED);
            touched = floor;
            cycles = cycle;
        }
        populate_to(floor + (size_t)((double)amplitude * (double)((t - start) % period_ns) / (double)period_ns));
        if (cycles == 0) {
            uint64_t ws = working_set();
            if (ws > hi) hi = ws;
        }
        next += STEP_NS;
        sleep_until(next);
    }
    term_line(lim, 0, "");
    return 0;
}

static int oomchild(int hold_s) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGTERM, &sa, NULL);
    pid_t child = fork();
    if (child < 0) die("fork", "the child");
    if (child == 0) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "1000", 4) != 4) die("write", "/proc/self/oom_score_adj");
        close(fd);
        touch_to(mem_size);
        _exit(1); /* not killed */
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) die("waitpid", "the child");
    if (WIFSIGNALED(status))
        out("child=killed signal=%d", WTERMSIG(status));
    else
        out("child=exited status=%d", WEXITSTATUS(status));
    sleep((unsigned)hold_s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr,
                "usage: leak DIR OUT leak RATE_MIB_S BASE_MIB | flat PERCENT [RAMP_MS] | sawtooth LOW HIGH PERIOD_MS | oomchild HOLD_S\n");
        return 2;
    }
    dir = argv[1];
    const char *mode = argv[3];
    char probe[4096];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/memory.current", dir);
    v1 = stat(probe, &st) != 0;
    usage_fd = open_in(v1 ? "memory.usage_in_bytes" : "memory.current");
    limit_fd = open_in(v1 ? "memory.limit_in_bytes" : "memory.max");
    stat_fd = open_in("memory.stat");
    out_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0) die("open", argv[2]);

    uint64_t lim = limit();
    if (lim > 64ULL << 30) {
        fprintf(stderr, "leak: %s has no limit (or one above 64 GiB): %llu\n", dir, (unsigned long long)lim);
        return 2;
    }
    map(lim);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    if (sigaction(SIGTERM, &sa, NULL) != 0) die("sigaction", "SIGTERM");

    if (strcmp(mode, "leak") == 0 && argc == 6) return leak(atof(argv[4]), atof(argv[5]), lim);
    if (strcmp(mode, "flat") == 0 && (argc == 5 || argc == 6))
        return flat(atof(argv[4]), argc == 6 ? (int64_t)atoll(argv[5]) * 1000000 : 0, lim);
    if (strcmp(mode, "sawtooth") == 0 && argc == 7)
        return sawtooth(atof(argv[4]), atof(argv[5]), (int64_t)atoll(argv[6]) * 1000000, lim);
    if (strcmp(mode, "oomchild") == 0 && argc == 5) return oomchild(atoi(argv[4]));
    fprintf(stderr, "leak: unknown mode or wrong number of arguments: %s\n", mode);
    return 2;
}
