/* The physical floor of an exec memory probe: no C library, its own _start, raw system calls.
 *
 *   floor v1|v2 DIR
 *
 * Opens and reads the three files a cgroup probe needs (DIR/memory.current, memory.max and
 * memory.stat on v2; memory.usage_in_bytes, memory.limit_in_bytes and memory.stat on v1),
 * takes inactive_file (total_inactive_file on v1) off the usage, and exits 0 below 95% of the
 * limit, 4 at or above it. No output, no close: exit does both jobs. It does not find the
 * cgroup (no /proc/self/cgroup, no mountinfo) nor handle errors beyond exit 2; nothing that
 * does more can exec faster. Built with gcc -nostdlib -static (see exec.sh). */
typedef unsigned long u64;

#if defined(__x86_64__)
#define SYS_read 0
#define SYS_openat 257
#define SYS_exit_group 231
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
#define SYS_read 63
#define SYS_openat 56
#define SYS_exit_group 94
static long sys3(long n, long a, long b, long c) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#else
#error "floor.c: add this architecture's system call numbers"
#endif

#define AT_FDCWD -100
#define O_RDONLY_CLOEXEC 02000000

static __attribute__((noreturn)) void quit(int code) {
    for (;;) sys3(SYS_exit_group, code, 0, 0);
}

static char path[4096];
static char buf[8192];

/* path = dir + "/" + name; returns the file's bytes in buf (NUL-terminated) or -1. */
static long slurp(const char *dir, const char *name) {
    char *p = path;
    while (*dir) *p++ = *dir++;
    *p++ = '/';
    while (*name) *p++ = *name++;
    *p = 0;
    long fd = sys3(SYS_openat, AT_FDCWD, (long)path, O_RDONLY_CLOEXEC);
    if (fd < 0) return -1;
    long n = sys3(SYS_read, fd, (long)buf, sizeof buf - 1);
    if (n < 0) return -1;
    buf[n] = 0;
    return n;
}

static u64 number(const char *s) {
    u64 v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (u64)(*s++ - '0');
    return v;
}

/* The value of the line "key value" in buf, 0 when absent. */
static u64 stat_value(const char *key) {
    for (const char *line = buf; *line;) {
        const char *k = key, *s = line;
        while (*k && *s == *k) k++, s++;
        if (!*k && *s == ' ') return number(s + 1);
        while (*line && *line != '\n') line++;
        if (*line) line++;
    }
    return 0;
}

void __attribute__((used)) start_c(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    if (argc != 3 || argv[1][0] != 'v') quit(3);
    int v1 = argv[1][1] == '1';
    const char *dir = argv[2];
    if (slurp(dir, v1 ? "memory.usage_in_bytes" : "memory.current") < 0) quit(2);
    u64 used = number(buf);
    if (slurp(dir, v1 ? "memory.limit_in_bytes" : "memory.max") < 0) quit(2);
    u64 limit = buf[0] == 'm' ? ~0UL : number(buf);
    if (slurp(dir, "memory.stat") < 0) quit(2);
    u64 inactive = stat_value(v1 ? "total_inactive_file" : "inactive_file");
    used = inactive < used ? used - inactive : 0;
    /* used/limit >= 95% in integers, without overflow for limits up to 2^64/100. */
    quit(used / 100 * 100 >= limit / 100 * 95 ? 4 : 0);
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n");
#elif defined(__aarch64__)
__asm__(".globl _start\n_start:\n mov x0, sp\n bl start_c\n");
#endif
