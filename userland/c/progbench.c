/* The real programs' benchmark (scripts/bench.py): as init of either
 * kernel, runs each line of /etc/programs, "NAME ROUNDS ARGV...", ROUNDS
 * times, timing fork + execve + wait with the TSC, and prints
 * "bench NAME MEDIAN MIN MAX ROUNDS" (cycles), the line vmbench prints.
 * The programs' own output goes to /dev/null. Built with musl-gcc -static. */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/proc", 0555);
    mkdir("/dev", 0755);
    mkdir("/tmp", 0755);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
    FILE *list = fopen("/etc/programs", "re");
    char line[1024];
    while (list && fgets(line, sizeof line, list)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *argv[32];
        int argc = 0;
        for (char *w = strtok(line, " "); w && argc < 31; w = strtok(NULL, " ")) argv[argc++] = w;
        argv[argc] = NULL;
        if (argc < 3) continue;
        int rounds = atoi(argv[1]);
        uint64_t t[64];
        int ok = 1;
        for (int r = 0; r < rounds && r < 64; r++) {
            uint64_t start = rdtsc();
            pid_t pid = fork();
            if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                char *env[] = {"PATH=/bin", NULL};
                execve(argv[2], argv + 2, env);
                _exit(127);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            t[r] = rdtsc() - start;
            ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        if (!ok) {
            printf("bench %s failed\n", argv[0]);
            continue;
        }
        qsort(t, rounds, sizeof t[0], cmp);
        printf("bench %s %llu %llu %llu %d\n", argv[0], (unsigned long long)t[rounds / 2],
               (unsigned long long)t[0], (unsigned long long)t[rounds - 1], rounds);
    }
    printf("progbench: done\n");
    fflush(stdout);
    reboot(RB_POWER_OFF);
    return 0;
}
