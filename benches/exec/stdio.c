/* The shape of the original C kubemem: dynamically linked, stdio, two files.
 *
 *   stdio DIR WARNING FAILURE
 *
 * Reads DIR/memory.usage_in_bytes and DIR/memory.limit_in_bytes (cgroup v1) or
 * DIR/memory.current and DIR/memory.max (v2) with fopen/fscanf, compares the percentage
 * with the thresholds, prints a line only when one is reached. Exit 0 healthy, 4 at the
 * failure threshold, 2 when a file cannot be read. Like the original it counts page cache
 * (raw usage), so it does less than kubemem: a yardstick, not a competitor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_u64(const char *dir, const char *name, unsigned long long *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ok = fscanf(f, "%llu", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: stdio DIR WARNING FAILURE\n");
        return 3;
    }
    unsigned long long used, limit;
    if (read_u64(argv[1], "memory.usage_in_bytes", &used) == 0) {
        if (read_u64(argv[1], "memory.limit_in_bytes", &limit) != 0) return 2;
    } else if (read_u64(argv[1], "memory.current", &used) != 0 ||
               read_u64(argv[1], "memory.max", &limit) != 0) {
        return 2;
    }
    double percent = 100.0 * (double)used / (double)limit;
    if (percent >= atof(argv[3])) {
        printf("failure: %.1f%%\n", percent);
        return 4;
    }
    if (percent >= atof(argv[2])) printf("warning: %.1f%%\n", percent);
    return 0;
}
