/* Races that must never show stale memory: the TLB shootdown from a
 * program's side, unchanged on pageos and on Linux (issue 16).
 *
 * - munmap: a thread spins reading a page while another munmaps it and
 *   maps a different page there (file pages, which keep their bytes);
 *   once munmap has returned (and the new page's generation is
 *   published), the reader never sees the old bytes. Then the same with
 *   anonymous pages, whose frames are freed: right after munmap the
 *   unmapping thread fills a decoy page (likely the frame just freed),
 *   so a reader still translating to the old frame would read the decoy.
 * - mprotect: a thread keeps storing into a page while another makes it
 *   read-only; no store lands after mprotect returned.
 * - first touch: several threads fault the same fresh region at once;
 *   every page gets exactly one frame (no store is lost, and the resident
 *   set grows by exactly the region's pages).
 * - fork: the parent's threads keep storing while the main thread forks;
 *   the child's copy never changes afterwards (a parent thread's stale
 *   writable TLB entry would store into the frame the child now shares).
 * - copy-on-write: the main thread breaks a page's copy-on-write while a
 *   reader thread keeps reading it; once the store is published the
 *   reader never sees the page from before (a reader's stale TLB entry
 *   would still show it the old frame, which the child keeps).
 *
 * Usage: racetest [SECONDS] (default 2: each race runs for that long).
 * Built by boot/tests/races.rs with: musl-gcc -static -O2 -pthread
 * Prints only ok/FAIL lines and the failure count, the same on both
 * kernels; as init (pid 1) it powers the machine off at the end. */

#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
static int failures;
static double seconds = 2;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Each thread's own way out of a SIGSEGV (the fault goes to the thread
 * that took it). */
static __thread sigjmp_buf *segv_jump;

static void on_segv(int sig) {
    (void)sig;
    if (segv_jump) siglongjmp(*segv_jump, 1);
    _exit(70);
}

/* ---- munmap while another thread reads ---- */

/* The pages come from a file, so that the page munmap takes away stays in
 * the page cache with its old bytes (an anonymous frame would go back to
 * the allocator and, handed out again at once, hide a stale translation
 * behind new bytes). Generation g maps file page g % FILE_PAGES. */
#define FILE_PAGES 16
static char *const race_va = (char *)0x500000000000;
static int race_fd = -1;
static volatile uint64_t published; /* the generation whose page is mapped */
static volatile int stop;
static volatile uint64_t stale_reads, good_reads, faulted_reads;

static uint64_t pattern(uint64_t generation) { return 0x5eed000000000000ull | generation; }
static int anonymous_race; /* the pages are anonymous, not the file's */

static void *munmap_reader(void *arg) {
    (void)arg;
    sigjmp_buf jump;
    segv_jump = &jump;
    while (!stop) {
        if (sigsetjmp(jump, 1)) {
            faulted_reads++;
            continue;
        }
        uint64_t generation = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
        uint64_t value = *(volatile uint64_t *)race_va;
        /* A later generation is fine (the writer moved on); an earlier
         * one is a page munmap already took away. An anonymous page
         * reads 0 before it is filled; anything else there is a freed
         * frame's bytes (the decoy's). */
        int tagged = (value >> 48) == 0x5eed;
        if (tagged ? (value & 0xffffffffffffull) < generation : anonymous_race && value != 0)
            stale_reads++;
        else
            good_reads++;
    }
    segv_jump = NULL;
    return NULL;
}

/* The page's bytes are written (by pwrite) before it is mapped at
 * race_va: what the reader finds there is the new generation or a fault. */
static int map_generation(uint64_t generation) {
    static uint64_t bytes[PAGE / 8];
    if (anonymous_race) {
        void *p = mmap(race_va, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       -1, 0);
        if (p != race_va) return 0;
        for (int i = 0; i < PAGE / 8; i++) ((volatile uint64_t *)race_va)[i] = pattern(generation);
        return 1;
    }
    off_t offset = (off_t)(generation % FILE_PAGES) * PAGE;
    for (int i = 0; i < PAGE / 8; i++) bytes[i] = pattern(generation);
    if (pwrite(race_fd, bytes, PAGE, offset) != PAGE) return 0;
    void *p = mmap(race_va, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, race_fd, offset);
    return p == race_va;
}

/* A page filled with the decoy's bytes, mapped after each munmap: with
 * frames reused most recently freed first, it is likely the old page's. */
static void *fill_decoy(void) {
    void *decoy = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (decoy != MAP_FAILED)
        for (int i = 0; i < PAGE / 8; i++) ((volatile uint64_t *)decoy)[i] = 0xdec0dec0dec0dec0ull;
    return decoy;
}

static void munmap_race(int anonymous) {
    const char *what = anonymous ? "anonymous munmap race" : "munmap race";
    char line[128];
    anonymous_race = anonymous;
    stop = 0;
    stale_reads = good_reads = faulted_reads = 0;
    race_fd = anonymous ? -1 : open("/racetest.pages", O_RDWR | O_CREAT | O_TRUNC, 0600);
    int sized = anonymous || (race_fd >= 0 && ftruncate(race_fd, FILE_PAGES * PAGE) == 0);
    uint64_t generation = 1;
    int mapped = sized && map_generation(generation);
    __atomic_store_n(&published, generation, __ATOMIC_RELEASE);
    pthread_t reader;
    pthread_create(&reader, NULL, munmap_reader, NULL);
    double end = now() + seconds;
    long rounds = 0;
    /* On a loaded host the reader's CPU may get no host core for the
     * whole race (Linux -smp 4 on 2 cores, once): go on, up to 30 s
     * more, until it has read the page at least once. */
    while (mapped && (now() < end || (good_reads == 0 && now() < end + 30))) {
        /* Let the reader cache the translation. */
        for (volatile int spin = 0; spin < 20000; spin++) {
        }
        munmap(race_va, PAGE);
        void *decoy = anonymous ? fill_decoy() : MAP_FAILED;
        generation++;
        mapped = map_generation(generation);
        __atomic_store_n(&published, generation, __ATOMIC_RELEASE);
        if (decoy != MAP_FAILED) munmap(decoy, PAGE);
        rounds++;
    }
    stop = 1;
    pthread_join(reader, NULL);
    munmap(race_va, PAGE);
    if (race_fd >= 0) close(race_fd);
    if (!anonymous) unlink("/racetest.pages");
    snprintf(line, sizeof line, "%s: the page was unmapped and mapped again", what);
    check(mapped && rounds >= 1, line);
    snprintf(line, sizeof line, "%s: the reader read the page", what);
    check(good_reads > 0, line);
    snprintf(line, sizeof line, "%s: no read saw a page after munmap returned", what);
    check(stale_reads == 0, line);
}

/* ---- mprotect while another thread writes ---- */

static volatile uint64_t *counter_page;
/* The round main runs, and the last round the writer's store faulted in. */
static volatile uint64_t round_now, faulted_round;

static void *mprotect_writer(void *arg) {
    (void)arg;
    sigjmp_buf jump;
    segv_jump = &jump;
    uint64_t value = 0;
    volatile uint64_t round = 0;
    if (sigsetjmp(jump, 1)) {
        /* The page is read-only: wait for the next round. */
        faulted_round = round;
        while (round_now == round && !stop) sched_yield();
    }
    while (!stop) {
        round = round_now;
        if (round == faulted_round) {
            sched_yield();
            continue;
        }
        counter_page[0] = ++value;
    }
    segv_jump = NULL;
    return NULL;
}

static void mprotect_race(void) {
    stop = 0;
    round_now = faulted_round = 0;
    counter_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    counter_page[0] = 0;
    pthread_t writer;
    pthread_create(&writer, NULL, mprotect_writer, NULL);
    double end = now() + seconds;
    long rounds = 0, late_stores = 0, faults = 0;
    while (now() < end) {
        uint64_t before = counter_page[0];
        uint64_t round = ++round_now;
        /* Let it store for a while, through its cached translation. */
        double until = now() + 0.002;
        while (counter_page[0] == before && now() < until + 1) {
        }
        while (now() < until) {
        }
        mprotect((void *)counter_page, PAGE, PROT_READ);
        uint64_t seen = counter_page[0];
        double watch = now() + 0.002;
        while (now() < watch) {
        }
        if (counter_page[0] != seen) late_stores++;
        /* Its next store faults. */
        double patience = now() + 5;
        while (faulted_round != round && now() < patience) sched_yield();
        faults += faulted_round == round;
        mprotect((void *)counter_page, PAGE, PROT_READ | PROT_WRITE);
        rounds++;
    }
    stop = 1;
    pthread_join(writer, NULL);
    munmap((void *)counter_page, PAGE);
    check(rounds >= 1 && faults == rounds, "mprotect race: every round's store after it faulted");
    if (rounds < 1 || faults != rounds) printf("  %ld rounds, %ld faulted\n", rounds, faults);
    check(late_stores == 0, "mprotect race: no store landed after mprotect returned");
}

/* ---- concurrent first-touch faults ---- */

#define TOUCHERS 4
#define TOUCH_PAGES 512
static char *touch_region;
static pthread_barrier_t touch_barrier;

static void *toucher(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_barrier_wait(&touch_barrier);
    /* Each starts at a different page and goes round: they meet. */
    for (int i = 0; i < TOUCH_PAGES; i++) {
        int page = (i + index * (TOUCH_PAGES / TOUCHERS)) % TOUCH_PAGES;
        touch_region[(long)page * PAGE + index] = (char)(index + 1);
    }
    return NULL;
}

/* Resident pages (statm's second field). */
static long resident(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = -1, rss = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
        fclose(f);
    }
    return rss;
}

static void first_touch_race(void) {
    double end = now() + seconds;
    long rounds = 0, lost = 0, wrong_rss = 0, no_rss = 0;
    while (now() < end || rounds == 0) {
        touch_region = mmap(NULL, (long)TOUCH_PAGES * PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        pthread_t t[TOUCHERS];
        pthread_barrier_init(&touch_barrier, NULL, TOUCHERS);
        long before = resident();
        for (int i = 0; i < TOUCHERS; i++) pthread_create(&t[i], NULL, toucher, (void *)(intptr_t)i);
        for (int i = 0; i < TOUCHERS; i++) pthread_join(t[i], NULL);
        long after = resident();
        pthread_barrier_destroy(&touch_barrier);
        for (long page = 0; page < TOUCH_PAGES; page++)
            for (int i = 0; i < TOUCHERS; i++)
                if (touch_region[page * PAGE + i] != (char)(i + 1)) lost++;
        if (before < 0 || after < 0)
            no_rss++;
        /* The threads' stacks are mapped already when they start; the
         * region's pages are all that the touches add (but for a page
         * of malloc or stdio, hence the small slack). */
        else if (after - before < TOUCH_PAGES || after - before > TOUCH_PAGES + 16)
            wrong_rss++;
        munmap(touch_region, (long)TOUCH_PAGES * PAGE);
        rounds++;
    }
    check(lost == 0, "first-touch race: no store was lost (one frame a page)");
    check(no_rss == 0 && wrong_rss == 0, "first-touch race: the resident set grew by the pages");
}

/* ---- copy-on-write after fork in a threaded parent ---- */

#define STORERS 3
static volatile uint64_t *shared_counters; /* one page a storer */

static void *storer(void *arg) {
    int index = (int)(intptr_t)arg;
    volatile uint64_t *mine = shared_counters + index * (PAGE / 8);
    uint64_t value = 0;
    while (!stop) *mine = ++value;
    return NULL;
}

static void fork_race(void) {
    stop = 0;
    shared_counters = mmap(NULL, STORERS * PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset((void *)shared_counters, 0, STORERS * PAGE);
    pthread_t t[STORERS];
    for (int i = 0; i < STORERS; i++) pthread_create(&t[i], NULL, storer, (void *)(intptr_t)i);
    double end = now() + seconds;
    long rounds = 0, changed = 0, other = 0;
    while (now() < end || rounds == 0) {
        for (volatile int spin = 0; spin < 20000; spin++) {
        }
        pid_t child = fork();
        if (child == 0) {
            uint64_t first[STORERS];
            for (int i = 0; i < STORERS; i++) first[i] = shared_counters[i * (PAGE / 8)];
            double until = now() + 0.01;
            int moved = 0;
            while (now() < until)
                for (int i = 0; i < STORERS; i++)
                    if (shared_counters[i * (PAGE / 8)] != first[i]) moved = 1;
            _exit(moved ? 1 : 0);
        }
        int status;
        waitpid(child, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
            changed++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            other++;
        rounds++;
    }
    stop = 1;
    for (int i = 0; i < STORERS; i++) pthread_join(t[i], NULL);
    int moving = 1;
    for (int i = 0; i < STORERS; i++) moving &= shared_counters[i * (PAGE / 8)] != 0;
    munmap((void *)shared_counters, STORERS * PAGE);
    check(moving, "fork race: the parent's threads stored all along");
    check(other == 0, "fork race: every child exited");
    check(changed == 0, "fork race: no child's copy changed after fork");
}

/* ---- a copy-on-write break seen by every thread ---- */

/* The main thread forks a child that only waits, so that the page is
 * shared, then stores the round's number into it: a copy-on-write break,
 * which gives the main thread a new frame. A reader thread on the other
 * CPU keeps reading the page; once the number is published (in another
 * page), the page must hold it for the reader too. A reader still
 * translating through its old TLB entry would read the old frame, which
 * the child keeps, and the round before's number. */
static volatile uint64_t *cow_page;
static volatile uint64_t cow_published; /* the number stored, once it is */
static volatile uint64_t cow_stale, cow_reads;

static void *cow_reader(void *arg) {
    (void)arg;
    while (!stop) {
        uint64_t want = cow_published;
        if (cow_page[0] < want) cow_stale++;
        cow_reads++;
    }
    return NULL;
}

static void cow_break_race(void) {
    stop = 0;
    cow_page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cow_page[0] = 0;
    pthread_t reader;
    pthread_create(&reader, NULL, cow_reader, NULL);
    double end = now() + seconds;
    uint64_t round = 0;
    long other = 0;
    while (now() < end || round == 0) {
        int gate[2];
        if (pipe(gate) != 0) break;
        pid_t child = fork();
        if (child == 0) {
            char c;
            close(gate[1]);
            (void)!read(gate[0], &c, 1);
            _exit(0);
        }
        round++;
        cow_page[0] = round;
        cow_published = round;
        /* Let the reader look at the page a while, with the child alive. */
        for (volatile int spin = 0; spin < 20000; spin++) {
        }
        close(gate[0]);
        close(gate[1]);
        int status;
        waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) other++;
    }
    stop = 1;
    pthread_join(reader, NULL);
    munmap((void *)cow_page, PAGE);
    check(cow_reads > 0 && other == 0, "copy-on-write race: the reader read, every child exited");
    check(cow_stale == 0, "copy-on-write race: no thread saw the page from before the break");
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    if (seconds <= 0) seconds = 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", 0, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    printf("BEGIN racetest\n");
    munmap_race(0);
    munmap_race(1);
    mprotect_race();
    first_touch_race();
    fork_race();
    cow_break_race();
    printf("%d failures\n", failures);
    printf("END racetest\n");
    if (getpid() == 1) reboot(RB_POWER_OFF);
    return failures != 0;
}
