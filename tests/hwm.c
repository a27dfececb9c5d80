/* Peak resident memory of a program itself: runs ARGV under ptrace, stops it at its exit (its
 * memory still mapped), prints VmHWM from /proc/PID/status in KiB, then lets it exit and
 * exits with its status.
 *
 *   hwm PROGRAM [ARGS...]
 *
 * Why not /usr/bin/time %M: that is the child's maximum over its whole life, so it includes
 * the forked copy of time itself before the exec (about 450 KiB), more than a static musl
 * kubemem ever maps (about 100 KiB): the budget would measure time, not kubemem. VmHWM is reset
 * by exec and counts only the new image's pages. Built by tests/budgets.sh and the exec
 * benchmark with cc. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hwm PROGRAM [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) return perror("fork"), 2;
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int st;
    /* The first stop is the SIGTRAP after a successful exec. */
    if (waitpid(pid, &st, 0) < 0 || !WIFSTOPPED(st)) {
        fprintf(stderr, "hwm: %s did not start\n", argv[1]);
        return 2;
    }
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
    long hwm = -1;
    for (int sig = 0;;) {
        ptrace(PTRACE_CONT, pid, 0, sig);
        if (waitpid(pid, &st, 0) < 0) return perror("waitpid"), 2;
        if (WIFEXITED(st)) break;
        if (WIFSIGNALED(st)) {
            st = 128 + WTERMSIG(st);
            break;
        }
        sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
        if (st >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
            char path[64], line[256];
            snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
            FILE *f = fopen(path, "r");
            while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "VmHWM: %ld kB", &hwm) == 1) break;
            if (f) fclose(f);
        }
    }
    if (hwm < 0) {
        fprintf(stderr, "hwm: no VmHWM at %s's exit\n", argv[1]);
        return 2;
    }
    printf("%ld\n", hwm);
    return WIFEXITED(st) ? WEXITSTATUS(st) : st;
}
