/* Threads from a real program's side, unchanged on pageos and on Linux:
 * musl's pthreads over clone(CLONE_THREAD), futex, set_tid_address,
 * tgkill and per-thread signal state.
 *
 * 64 threads created and joined; a mutex, a condition variable (with a
 * timeout) and a barrier; thread-local storage; gettid versus getpid;
 * signals for one thread (pthread_kill) and for the process (kill, taken
 * by the thread that does not block it); a stack overflow into a
 * thread's guard page, caught by that thread's SIGSEGV handler on its
 * alternate stack, and uncaught (the process dies of SIGSEGV); exit from
 * one thread versus exit_group; fork and execve from a threaded process;
 * the futex calls themselves; timeouts taken by several threads at once;
 * clone's EINVAL rules.
 *
 * Built by boot/tests/threads.rs with: musl-gcc -static -O2 -pthread
 * Its output between BEGIN and END must be the same on both kernels (the
 * test compares them, Linux with 4 CPUs); it prints no address or id. */

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* linux/futex.h's values (musl-gcc has no kernel headers). */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define FUTEX_WAIT 0
#define FUTEX_CMP_REQUEUE_PRIVATE (4 | 128)
#define FUTEX_WAIT_BITSET_PRIVATE (9 | 128)
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static long futex(void *addr, int op, unsigned val, const struct timespec *t, void *addr2,
                  unsigned val3) {
    return syscall(SYS_futex, addr, op, val, t, addr2, val3);
}

/* The Threads: line of /proc/self/status, or -1 without /proc. */
static int threads_in_status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: exit %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: signal %d\n", what, WTERMSIG(status));
    else
        printf("%s: status %#x\n", what, status);
}

/* ---- 64 threads, TLS ---- */

static __thread int tls_value = 7;
static pid_t seen_tids[64];

static void *numbered(void *arg) {
    int i = (int)(intptr_t)arg;
    int ok = tls_value == 7 && getpid() != gettid_();
    tls_value = 1000 + i;
    sched_yield();
    seen_tids[i] = gettid_();
    return (void *)(intptr_t)(ok && tls_value == 1000 + i ? i * 2 : -1);
}

static void sixty_four_threads(void) {
    pthread_t t[64];
    int created = 0, joined = 0;
    for (int i = 0; i < 64; i++)
        created += pthread_create(&t[i], NULL, numbered, (void *)(intptr_t)i) == 0;
    check(created == 64, "64 threads created");
    for (int i = 0; i < 64; i++) {
        void *ret;
        if (pthread_join(t[i], &ret) == 0 && (intptr_t)ret == i * 2) joined++;
    }
    check(joined == 64, "64 threads joined, each with its own TLS and return value");
    int distinct = 1;
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < i; j++)
            if (seen_tids[i] == seen_tids[j] || seen_tids[i] == getpid()) distinct = 0;
    check(distinct, "64 distinct thread ids, none the pid");
    check(tls_value == 7, "main thread's TLS untouched");
    check(getpid() == gettid_(), "main thread's tid is the pid");
}

/* ---- mutex, condvar, barrier ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static int queue[16], head, tail, done_producing;
static pthread_barrier_t barrier;
static int round_marks[8][4];

static void *incrementer(void *arg) {
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&lock);
        long v = counter;
        if (i % 1000 == 0) sched_yield();
        counter = v + 1;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *producer(void *arg) {
    (void)arg;
    for (int i = 1; i <= 1000; i++) {
        pthread_mutex_lock(&lock);
        while (tail - head == 16) pthread_cond_wait(&cond, &lock);
        queue[tail++ % 16] = i;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    done_producing = 1;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *consumer(void *arg) {
    long sum = 0;
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == tail && !done_producing) pthread_cond_wait(&cond, &lock);
        if (head == tail) {
            pthread_mutex_unlock(&lock);
            return (void *)sum;
        }
        sum += queue[head++ % 16];
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
}

static void *barrier_worker(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < 8; r++) {
        round_marks[r][me] = 1;
        pthread_barrier_wait(&barrier);
        /* Past the barrier every worker has marked this round. */
        int all = 1;
        for (int w = 0; w < 4; w++) all &= round_marks[r][w];
        if (!all) return (void *)1;
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static void synchronisation(void) {
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, incrementer, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    check(counter == 8 * 20000, "mutex: 8 threads x 20000 increments");

    pthread_t p, c[3];
    pthread_create(&p, NULL, producer, NULL);
    for (int i = 0; i < 3; i++) pthread_create(&c[i], NULL, consumer, NULL);
    long total = 0;
    for (int i = 0; i < 3; i++) {
        void *sum;
        pthread_join(c[i], &sum);
        total += (long)sum;
    }
    pthread_join(p, NULL);
    check(total == 1000 * 1001 / 2, "condvar: 1000 items through a 16-slot queue, 3 consumers");

    pthread_barrier_init(&barrier, NULL, 4);
    int bad = 0;
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, barrier_worker, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += r != NULL;
    }
    check(bad == 0, "barrier: 4 threads, 8 rounds");
    pthread_barrier_destroy(&barrier);

    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_nsec += 50 * 1000 * 1000;
    if (at.tv_nsec >= 1000000000) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&lock);
    int r = pthread_cond_timedwait(&cond, &lock, &at);
    pthread_mutex_unlock(&lock);
    check(r == ETIMEDOUT, "pthread_cond_timedwait times out");
}

/* ---- the futex calls ---- */

static int word_a, word_b;
static volatile int woken_count, waiting_count;

static void *futex_waiter(void *arg) {
    int *word = arg;
    __atomic_fetch_add(&waiting_count, 1, __ATOMIC_SEQ_CST);
    long r = futex(word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    __atomic_fetch_add(&woken_count, 1, __ATOMIC_SEQ_CST);
    return (void *)r;
}

static void futex_calls(void) {
    int word = 1;
    errno = 0;
    check(futex(&word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0) == -1 && errno == EAGAIN,
          "FUTEX_WAIT on a changed word: EAGAIN");
    check(futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0, "FUTEX_WAKE without waiters: 0");
    errno = 0;
    check(futex((char *)&word + 1, FUTEX_WAIT, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
          "FUTEX_WAIT on an unaligned word: EINVAL");
    errno = 0;
    check(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
          "FUTEX_WAIT_BITSET with bitset 0: EINVAL");
    struct timespec rel = {0, 20 * 1000 * 1000};
    errno = 0;
    check(futex(&word, FUTEX_WAIT_PRIVATE, 1, &rel, NULL, 0) == -1 && errno == ETIMEDOUT,
          "FUTEX_WAIT with a relative timeout: ETIMEDOUT");
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 20 * 1000 * 1000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    errno = 0;
    check(futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 1, &abs, NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
              errno == ETIMEDOUT,
          "FUTEX_WAIT_BITSET with an absolute timeout: ETIMEDOUT");
    struct timespec bad = {0, 1000000000};
    errno = 0;
    check(futex(&word, FUTEX_WAIT_PRIVATE, 1, &bad, NULL, 0) == -1 && errno == EINVAL,
          "FUTEX_WAIT with tv_nsec 10^9: EINVAL");

    /* Three waiters on A: wake one, requeue one to B, leave one. */
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, futex_waiter, &word_a);
    /* Let all three reach the wait (a wake finds whoever waits). */
    for (int tries = 0; tries < 2000 && waiting_count < 3; tries++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    struct timespec settle = {0, 100 * 1000 * 1000};
    nanosleep(&settle, NULL);
    errno = 0;
    check(futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word_b, 5) == -1 &&
              errno == EAGAIN,
          "FUTEX_CMP_REQUEUE with a changed word: EAGAIN");
    long moved = futex(&word_a, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &word_b, 0);
    check(moved == 2, "FUTEX_CMP_REQUEUE: one woken and one requeued");
    long on_b = futex(&word_b, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0);
    long on_a = futex(&word_a, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0);
    check(on_b == 1 && on_a == 1, "the requeued waiter is woken on B, the last on A");
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    check(woken_count == 3, "all three waiters returned");
}

/* ---- timeouts on every CPU ---- */

/* Four threads sleep at once, three rounds of a nanosleep, a FUTEX_WAIT
 * timeout and a poll timeout of 30 ms each: with several CPUs their
 * timeouts end on several CPUs (pageos wakes a sleeper from any CPU's
 * tick, kernel/src/sleep.rs). None may end early. Late is looser: pageos
 * ends a timeout at a tick (10 ms), and TCG on a shared host can keep a
 * vCPU off a core for tens of milliseconds, so the median may be 100 ms
 * late and the worst 1 s (a lost wake-up never ends). Linux ends them
 * within 5 ms. */
enum { NAPPERS = 4, NAP_ROUNDS = 3, NAP_KINDS = 3, NAP_MS = 30 };
static pthread_barrier_t nap_start;
static int nap_word, nap_pipe[2];
static long nap_us[NAPPERS][NAP_ROUNDS * NAP_KINDS];
static int nap_wrong[NAPPERS];
/* `pthreads naps` prints the figures (they differ from run to run). */
static int show_naps;

static long monotonic_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000L + t.tv_nsec / 1000;
}

static void *napper(void *arg) {
    int i = (int)(intptr_t)arg;
    struct timespec rel = {0, NAP_MS * 1000L * 1000};
    pthread_barrier_wait(&nap_start);
    for (int n = 0; n < NAP_ROUNDS * NAP_KINDS; n++) {
        long start = monotonic_us();
        switch (n % NAP_KINDS) {
        case 0:
            nap_wrong[i] += nanosleep(&rel, NULL) != 0;
            break;
        case 1:
            errno = 0;
            nap_wrong[i] += !(futex(&nap_word, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0) == -1 &&
                              errno == ETIMEDOUT);
            break;
        default: {
            struct pollfd fd = {.fd = nap_pipe[0], .events = POLLIN};
            nap_wrong[i] += poll(&fd, 1, NAP_MS) != 0;
        }
        }
        nap_us[i][n] = monotonic_us() - start;
    }
    return NULL;
}

static int by_value(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void timeouts_at_once(void) {
    pthread_t t[NAPPERS];
    pipe(nap_pipe);
    pthread_barrier_init(&nap_start, NULL, NAPPERS);
    for (int i = 0; i < NAPPERS; i++) pthread_create(&t[i], NULL, napper, (void *)(intptr_t)i);
    for (int i = 0; i < NAPPERS; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&nap_start);
    close(nap_pipe[0]);
    close(nap_pipe[1]);
    enum { ALL = NAPPERS * NAP_ROUNDS * NAP_KINDS };
    long took[ALL];
    int wrong = 0;
    for (int i = 0; i < NAPPERS; i++) {
        wrong += nap_wrong[i];
        memcpy(&took[i * NAP_ROUNDS * NAP_KINDS], nap_us[i], sizeof nap_us[i]);
    }
    qsort(took, ALL, sizeof took[0], by_value);
    check(wrong == 0, "timeouts at once: nanosleep 0, FUTEX_WAIT ETIMEDOUT, poll 0");
    check(took[0] >= NAP_MS * 1000L, "timeouts at once: none of 36 ends early");
    check(took[ALL / 2] <= (NAP_MS + 100) * 1000L, "timeouts at once: the median within 100 ms");
    check(took[ALL - 1] <= (NAP_MS + 1000) * 1000L, "timeouts at once: every one within 1 s");
    if (show_naps)
        printf("naps: min %ld median %ld max %ld us\n", took[0], took[ALL / 2], took[ALL - 1]);
}

/* ---- signals and threads ---- */

static volatile pid_t handled_by;
static volatile pid_t helper_tid;
static volatile int helper_stop;
static volatile int usr2_seen;

static void on_usr(int sig) {
    handled_by = gettid_();
    if (sig == SIGUSR2) usr2_seen = 1;
}

static void *signal_helper(void *arg) {
    (void)arg;
    helper_tid = gettid_();
    while (!helper_stop) pause();
    return NULL;
}

static void wait_for_signal(volatile pid_t *slot) {
    for (int i = 0; i < 500 && *slot == 0; i++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

static void thread_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, signal_helper, NULL);
    wait_for_signal(&helper_tid);
    handled_by = 0;
    pthread_kill(t, SIGUSR1);
    wait_for_signal(&handled_by);
    check(handled_by == helper_tid, "pthread_kill: the handler runs in that thread");

    /* Blocked here, not there: a signal for the process goes there. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    handled_by = 0;
    kill(getpid(), SIGUSR2);
    wait_for_signal(&handled_by);
    check(handled_by == helper_tid && usr2_seen, "kill: the thread not blocking it takes it");
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    check(sigismember(&now, SIGUSR2), "the mask is the thread's own");
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    helper_stop = 1;
    pthread_kill(t, SIGUSR1);
    check(pthread_join(t, NULL) == 0, "helper joined");
}

/* ---- stack overflow into a thread's guard page ---- */

static __thread sigjmp_buf overflow_jump;
static volatile pid_t segv_tid;
static volatile int segv_code;

static void on_segv(int sig, siginfo_t *info, void *uc) {
    (void)sig;
    (void)uc;
    segv_tid = gettid_();
    segv_code = info->si_code;
    siglongjmp(overflow_jump, 1);
}

static int recurse(volatile char *above, int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    pad[1023] = above ? above[0] : 0;
    return recurse(pad, depth + 1) + pad[512];
}

static void *overflower(void *arg) {
    int catch = arg != NULL;
    pid_t me = gettid_();
    if (catch) {
        stack_t alt = {.ss_sp = malloc(65536), .ss_size = 65536};
        sigaltstack(&alt, NULL);
        if (sigsetjmp(overflow_jump, 1)) return (void *)(intptr_t)(segv_tid == me);
    }
    recurse(NULL, 0);
    return NULL;
}

static void guard_pages(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    pthread_t t;
    void *ret = NULL;
    pthread_create(&t, NULL, overflower, (void *)1);
    pthread_join(t, &ret);
    check(ret == (void *)1, "a guard-page SIGSEGV runs the faulting thread's handler");
    printf("si_code %d\n", segv_code);
    check(segv_tid != getpid(), "not the main thread's");
    signal(SIGSEGV, SIG_DFL);

    pid_t child = fork();
    if (child == 0) {
        pthread_t t2;
        pthread_create(&t2, NULL, overflower, NULL);
        pthread_join(t2, NULL);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    describe("uncaught overflow in a thread", status);
}

/* ---- exit, exit_group, fork, execve ---- */

static void *block_forever(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void *exit_seven(void *arg) {
    (void)arg;
    struct timespec ms = {0, 5 * 1000 * 1000};
    nanosleep(&ms, NULL);
    exit(7);
}

static void *outlive_main(void *arg) {
    (void)arg;
    struct timespec ms = {0, 20 * 1000 * 1000};
    nanosleep(&ms, NULL);
    /* The main thread is gone: this is the process's last thread. */
    exit(9);
}

static void *fork_from_thread(void *arg) {
    (void)arg;
    pid_t child = fork();
    if (child == 0) {
        pthread_t t;
        int joined = pthread_create(&t, NULL, numbered, (void *)0) == 0 &&
                     pthread_join(t, NULL) == 0;
        int n = threads_in_status();
        _exit(joined && (n == -1 || n == 1) ? 11 : 12);
    }
    int status;
    waitpid(child, &status, 0);
    return (void *)(intptr_t)status;
}

static char *self_path;

static void *exec_from_thread(void *arg) {
    (void)arg;
    char *args[] = {self_path, "exec-check", NULL};
    execve(self_path, args, (char *[]){NULL});
    _exit(99);
}

static void lifetimes(void) {
    int status;
    pid_t child = fork();
    if (child == 0) {
        pthread_t t;
        for (int i = 0; i < 3; i++) pthread_create(&t, NULL, block_forever, NULL);
        pthread_create(&t, NULL, exit_seven, NULL);
        for (;;) pause();
    }
    waitpid(child, &status, 0);
    describe("exit in one thread, others blocked", status);

    child = fork();
    if (child == 0) {
        pthread_t t;
        pthread_create(&t, NULL, outlive_main, NULL);
        pthread_exit(NULL);
    }
    waitpid(child, &status, 0);
    describe("pthread_exit of main, another thread exits last", status);

    child = fork();
    if (child == 0) {
        pthread_t t;
        for (int i = 0; i < 3; i++) pthread_create(&t, NULL, block_forever, NULL);
        void *r;
        pthread_create(&t, NULL, fork_from_thread, NULL);
        pthread_join(t, &r);
        describe("fork in a thread of a 5-thread process: child", (int)(intptr_t)r);
        exit(0);
    }
    waitpid(child, &status, 0);
    describe("the forking process", status);

    child = fork();
    if (child == 0) {
        pthread_t t;
        for (int i = 0; i < 3; i++) pthread_create(&t, NULL, block_forever, NULL);
        pthread_create(&t, NULL, exec_from_thread, NULL);
        for (;;) pause();
    }
    waitpid(child, &status, 0);
    describe("execve in a thread of a 5-thread process", status);
}

/* The exec'd image: one thread, whose tid is the pid (and which the
 * scheduler still knows after sleeping). */
static int exec_check(void) {
    struct timespec ms = {0, 20 * 1000 * 1000};
    nanosleep(&ms, NULL);
    sched_yield();
    int n = threads_in_status();
    return getpid() == gettid_() && (n == -1 || n == 1) ? 42 : 43;
}

/* ---- clone's rules ---- */

static void clone_rules(void) {
    errno = 0;
    check(syscall(SYS_clone, CLONE_THREAD | CLONE_VM, 0, 0, 0, 0) == -1 && errno == EINVAL,
          "clone: CLONE_THREAD without CLONE_SIGHAND is EINVAL");
    errno = 0;
    check(syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0) == -1 && errno == EINVAL,
          "clone: CLONE_SIGHAND without CLONE_VM is EINVAL");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-check") == 0) return exec_check();
    setvbuf(stdout, NULL, _IOLBF, 0);
    self_path = argv[0];
    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", 0, NULL);
    printf("BEGIN pthreads\n");
    if (argc > 1 && strcmp(argv[1], "naps") == 0) {
        show_naps = 1;
        for (int i = 0; i < 5; i++) timeouts_at_once();
        printf("%d failures\n", failures);
        printf("END pthreads\n");
        if (getpid() == 1) reboot(RB_POWER_OFF);
        return failures != 0;
    }
    sixty_four_threads();
    synchronisation();
    futex_calls();
    timeouts_at_once();
    thread_signals();
    guard_pages();
    lifetimes();
    clone_rules();
    printf("%d failures\n", failures);
    printf("END pthreads\n");
    if (getpid() == 1) reboot(RB_POWER_OFF);
    return failures != 0;
}
