/* How the VM scales with threads of one process (issue 16): will-it-scale's
 * page_fault1 and mmap1, threads variant, unchanged on pageos and on Linux.
 *
 * - page_fault1: each thread mmaps its own 64 MiB anonymous region, writes
 *   one byte per 4 KiB page (one demand-zero fault each), munmaps it, and
 *   again; an operation is one page faulted. The region is MADV_NOHUGEPAGE,
 *   so both kernels take 4 KiB faults (as vmbench does for Linux's sake).
 * - page_fault1_thp: the same on each kernel's default policy (Linux's
 *   transparent huge pages on); still counted per 4 KiB page written.
 * - mmap1: each thread mmaps 128 MiB anonymous and munmaps it, untouched;
 *   an operation is one mmap + munmap.
 * - stream: each thread rewrites its own 64 MiB, faulted in before the
 *   clock starts, 8 bytes at a time; an operation is 4 KiB written. No
 *   system call and no fault: what the host (QEMU's TCG and the memory
 *   behind it) gives two CPUs writing at once, the ceiling of the
 *   page-fault modes, which write (zero) every page they fault.
 *
 * Usage: scalebench [-r ROUNDS] MODE THREADS SECONDS [MODE THREADS SECONDS ...]
 * (-r: the whole list ROUNDS times over, interleaved; Linux takes at most
 * 32 arguments for init, so the rounds cannot be spelled out.)
 * Each triple prints
 *     scale MODE THREADS OPS_PER_SECOND OPS NANOSECONDS
 * (scripts/bench.py parses it) and `ok`/`FAIL` lines for its checks: every
 * call succeeded, and in the page-fault modes every page written read back
 * before its munmap (a load per page: nothing against a fault's cost).
 * The threads start together on a barrier; each runs whole iterations
 * until its deadline and the figure is the sum of each thread's own
 * operations over its own time (CLOCK_MONOTONIC).
 *
 * Built with: musl-gcc -static -O2 -pthread (scripts/bench.py,
 * boot/tests/threads.rs). As init (pid 1) it powers the machine off. */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

#define PAGE 4096
#define FAULT_REGION (64ul << 20)
#define MMAP_REGION (128ul << 20)
#define MAX_THREADS 64

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

enum mode { PAGE_FAULT1, PAGE_FAULT1_THP, MMAP1, STREAM };

struct worker {
    pthread_t thread;
    enum mode mode;
    uint64_t seconds_ns;
    uint64_t ops, ns;
    long bad_calls, bad_pages;
    uint64_t *buffer; /* stream's region */
};

static pthread_barrier_t start;

/* One page_fault1 iteration: the region faulted page by page, read back,
 * unmapped. The byte differs per page and per iteration, so a page handed
 * out twice, or an old frame left mapped, shows. */
static void fault_once(struct worker *w, uint64_t iteration) {
    char *p = mmap(NULL, FAULT_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        w->bad_calls++;
        return;
    }
    if (w->mode == PAGE_FAULT1 && madvise(p, FAULT_REGION, MADV_NOHUGEPAGE) != 0) w->bad_calls++;
    size_t pages = FAULT_REGION / PAGE;
    for (size_t i = 0; i < pages; i++) p[i * PAGE] = (char)(i + iteration + 1);
    /* Through a volatile pointer: the compiler would fold the reads into
     * the values it has just stored. */
    volatile char *v = p;
    for (size_t i = 0; i < pages; i++)
        if (v[i * PAGE] != (char)(i + iteration + 1) || v[i * PAGE + 1] != 0) w->bad_pages++;
    if (munmap(p, FAULT_REGION) != 0) w->bad_calls++;
    w->ops += pages;
}

static void mmap_once(struct worker *w) {
    void *p = mmap(NULL, MMAP_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        w->bad_calls++;
        return;
    }
    if (munmap(p, MMAP_REGION) != 0) w->bad_calls++;
    w->ops++;
}

/* One stream iteration: the whole region written, its last word checked. */
static void stream_once(struct worker *w, uint64_t iteration) {
    size_t words = FAULT_REGION / sizeof(uint64_t);
    for (size_t i = 0; i < words; i++) w->buffer[i] = iteration + i;
    volatile uint64_t *v = w->buffer;
    if (v[words - 1] != iteration + words - 1) w->bad_pages++;
    w->ops += FAULT_REGION / PAGE;
}

static void *work(void *arg) {
    struct worker *w = arg;
    if (w->mode == STREAM) {
        void *p = mmap(NULL, FAULT_REGION, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) {
            w->bad_calls++;
            p = NULL;
        }
        w->buffer = p;
    }
    pthread_barrier_wait(&start);
    uint64_t begin = now_ns(), end = begin + w->seconds_ns, t = begin;
    for (uint64_t iteration = 0; t < end || iteration == 0; iteration++) {
        if (w->mode == MMAP1)
            mmap_once(w);
        else if (w->mode == STREAM) {
            if (w->buffer == NULL) break;
            stream_once(w, iteration);
        } else
            fault_once(w, iteration);
        t = now_ns();
    }
    w->ns = t - begin;
    if (w->buffer != NULL && munmap(w->buffer, FAULT_REGION) != 0) w->bad_calls++;
    return NULL;
}

static int run(const char *name, int threads, double seconds) {
    enum mode mode;
    if (strcmp(name, "page_fault1") == 0)
        mode = PAGE_FAULT1;
    else if (strcmp(name, "page_fault1_thp") == 0)
        mode = PAGE_FAULT1_THP;
    else if (strcmp(name, "mmap1") == 0)
        mode = MMAP1;
    else if (strcmp(name, "stream") == 0)
        mode = STREAM;
    else {
        printf("FAIL unknown mode %s\n", name);
        return -1;
    }
    if (threads < 1 || threads > MAX_THREADS || seconds <= 0) {
        printf("FAIL bad threads or seconds for %s\n", name);
        return -1;
    }
    static struct worker workers[MAX_THREADS];
    memset(workers, 0, sizeof workers);
    pthread_barrier_init(&start, NULL, threads);
    int created = 1;
    for (int i = 0; i < threads; i++) {
        workers[i].mode = mode;
        workers[i].seconds_ns = (uint64_t)(seconds * 1e9);
        /* The main thread is worker 0: `threads` threads fault, no more. */
        if (i > 0 && pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) created = 0;
    }
    if (!created) {
        printf("FAIL %s: pthread_create\n", name);
        return -1;
    }
    work(&workers[0]);
    for (int i = 1; i < threads; i++) pthread_join(workers[i].thread, NULL);
    pthread_barrier_destroy(&start);
    double rate = 0;
    uint64_t ops = 0, ns = 0;
    long bad_calls = 0, bad_pages = 0;
    for (int i = 0; i < threads; i++) {
        rate += workers[i].ops * 1e9 / (double)workers[i].ns;
        ops += workers[i].ops;
        if (workers[i].ns > ns) ns = workers[i].ns;
        bad_calls += workers[i].bad_calls;
        bad_pages += workers[i].bad_pages;
    }
    char what[96];
    snprintf(what, sizeof what, "%s %d threads: every %s succeeded", name, threads,
             mode == PAGE_FAULT1 ? "mmap, madvise and munmap" : "mmap and munmap");
    check(bad_calls == 0, what);
    if (mode != MMAP1) {
        snprintf(what, sizeof what, "%s %d threads: every page written read back", name, threads);
        check(bad_pages == 0, what);
    }
    printf("scale %s %d %.0f %llu %llu\n", name, threads, rate, (unsigned long long)ops,
           (unsigned long long)ns);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("BEGIN scalebench\n");
    int first = 1, rounds = 1;
    if (argc > 2 && strcmp(argv[1], "-r") == 0) {
        rounds = atoi(argv[2]);
        first = 3;
    }
    if (rounds < 1 || argc - first < 3 || (argc - first) % 3 != 0) {
        printf("FAIL usage: scalebench [-r ROUNDS] page_fault1|page_fault1_thp|mmap1|stream THREADS SECONDS ...\n");
        failures++;
        rounds = 0;
    }
    for (int r = 0; r < rounds; r++)
        for (int i = first; i + 2 < argc; i += 3)
            if (run(argv[i], atoi(argv[i + 1]), atof(argv[i + 2])) != 0) failures++;
    printf("%d failures\n", failures);
    printf("END scalebench\n");
    if (getpid() == 1) reboot(RB_POWER_OFF);
    return failures != 0;
}
