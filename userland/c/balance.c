/* Two CPU-bound processes on two CPUs: do they run side by side?
 * (boot/tests/smp.rs, docs/src/concurrency.md's run queues.)
 *
 * The parent times one spinner alone, then two at once, on the guest's
 * monotonic clock. Each spinner reads its /proc/self/stat `processor`
 * (field 39) at half and at nine tenths of its work, while the other one
 * surely still spins, and sends the pair to the parent. With a scheduler
 * that balances, the two were on different CPUs at one of those moments
 * and two took about the time of one; with both on one CPU they take
 * twice as long. The same binary runs on Linux (`-smp 2`).
 * Built with musl-gcc -static -O2. */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long work = 40000000;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Field 39 of /proc/self/stat: the CPU this process runs on now. */
static int processor(void) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may hold spaces */
    if (!p) return -1;
    int field = 2;
    for (; *p; p++) {
        if (*p == ' ' && ++field == 39) return atoi(p + 1);
    }
    return -1;
}

static void spin(int out) {
    int cpus[2] = {-1, -1};
    for (volatile unsigned long i = 0; i < work; i++) {
        if (i == work / 2) cpus[0] = processor();
        if (i == work / 10 * 9) cpus[1] = processor();
    }
    if (write(out, cpus, sizeof cpus) != sizeof cpus) _exit(2);
    _exit(0);
}

/* Run `n` spinners at once; their CPUs into `cpus` (2 per spinner). */
static double run(int n, int *cpus) {
    int fds[2];
    if (pipe(fds) != 0) exit(1);
    double start = now();
    for (int i = 0; i < n; i++) {
        if (fork() == 0) spin(fds[1]);
    }
    for (int i = 0; i < n; i++) wait(NULL);
    double took = now() - start;
    for (int i = 0; i < n; i++) {
        if (read(fds[0], cpus + 2 * i, 2 * sizeof(int)) != 2 * sizeof(int)) exit(1);
    }
    close(fds[0]);
    close(fds[1]);
    return took;
}

int main(int argc, char **argv) {
    if (argc > 1) work = strtoul(argv[1], NULL, 0);
    /* As init on Linux (scripts/linux-run.py), /proc is not mounted yet. */
    if (access("/proc/self/stat", R_OK) != 0) {
        mkdir("/proc", 0555);
        mount("proc", "/proc", "proc", 0, NULL);
    }
    int cpus[4];
    double one = run(1, cpus);
    double two = run(2, cpus);
    int apart = cpus[0] != cpus[2] || cpus[1] != cpus[3];
    printf("balance: two spinners ran on different CPUs: %s\n", apart ? "yes" : "no");
    printf("balance: figures: one %.3f s, two %.3f s, ratio %.2f, cpus %d %d / %d %d\n", one, two,
           two / one, cpus[0], cpus[1], cpus[2], cpus[3]);
    fflush(stdout);
    return 0;
}
