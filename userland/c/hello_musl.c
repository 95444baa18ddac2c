/* A real static C program against musl libc, unchanged on pageos and on
 * Linux: stdio, malloc (small blocks from brk, large ones from mmap),
 * fork and wait with exit codes and signal statuses, a SIGSEGV handler
 * that repairs the fault with mprotect and returns, and execve of itself.
 *
 * Built by boot/tests/proc.rs with: musl-gcc -static -O2
 * Its output between BEGIN and END must be the same on both kernels (the
 * test compares them); it prints no address or pid, which differ. */

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t faults;
static volatile int fault_code;
static char *volatile fault_page;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *info, void *uc) {
    (void)sig;
    (void)uc;
    faults++;
    fault_code = info->si_code;
    fault_addr = (uintptr_t)info->si_addr;
    if (mprotect(fault_page, 4096, PROT_READ | PROT_WRITE) != 0) _exit(90);
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status))
        printf("%s: exited with %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("%s: status %#x\n", what, status);
}

static int run_child(int how) {
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        switch (how) {
        case 0: _exit(7);
        case 1: *(volatile int *)0 = 1; _exit(100);
        case 2: raise(SIGBUS); _exit(100);
        case 3: __builtin_trap();
        default: for (;;) pause();
        }
    }
    int status;
    if (how == 4) kill(pid, SIGKILL);
    if (waitpid(pid, &status, 0) != pid) return -1;
    return status;
}

static int malloc_works(void) {
    /* Small blocks come from brk, large ones from mmap (musl's mallocng). */
    char *small[64];
    for (int i = 0; i < 64; i++) {
        small[i] = malloc(24 + i);
        if (!small[i]) return 0;
        memset(small[i], i, 24 + i);
    }
    size_t big_len = 8 << 20;
    unsigned char *big = malloc(big_len);
    if (!big) return 0;
    for (size_t i = 0; i < big_len; i += 4096) big[i] = (unsigned char)(i >> 12);
    for (size_t i = 0; i < big_len; i += 4096)
        if (big[i] != (unsigned char)(i >> 12)) return 0;
    for (int i = 0; i < 64; i++) {
        for (int j = 0; j < 24 + i; j++)
            if (small[i][j] != i) return 0;
        free(small[i]);
    }
    free(big);
    char *grown = NULL;
    for (size_t n = 16; n <= (1 << 20); n *= 2) {
        char *p = realloc(grown, n);
        if (!p) return 0;
        p[n - 1] = 'x';
        grown = p;
    }
    free(grown);
    return 1;
}

int main(int argc, char **argv) {
    /* Line buffering whatever stdout is (the console is a terminal on both
     * kernels, a pipe would not be), so that fork never duplicates
     * buffered output. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "exec") == 0) {
        printf("exec'd with %d arguments:", argc);
        for (int i = 2; i < argc; i++) printf(" [%s]", argv[i]);
        printf(" HELLO=%s\n", getenv("HELLO") ? getenv("HELLO") : "(unset)");
        return 3;
    }
    printf("BEGIN hello_musl\n");
    printf("printf: %d %s %5.2f %#x\n", 42, "text", 3.14159, 255);
    printf("malloc: %s\n", malloc_works() ? "ok" : "FAILED");

    describe("child exit(7)", run_child(0));
    describe("child store to NULL", run_child(1));
    describe("child raise(SIGBUS)", run_child(2));
    describe("child trap", run_child(3));
    describe("child killed", run_child(4));

    int waited = 0;
    for (int i = 0; i < 8; i++)
        if (fork() == 0) _exit(i);
    for (int i = 0; i < 8; i++) {
        int status;
        if (wait(&status) > 0 && WIFEXITED(status)) waited += WEXITSTATUS(status);
    }
    printf("8 children: exit codes sum to %d\n", waited);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    fault_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fault_page[100] = 'y';
    printf("SIGSEGV handler: %d fault(s), code %s, address %s, value %c\n", (int)faults,
           fault_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other",
           fault_addr == (uintptr_t)(fault_page + 100) ? "exact" : "wrong", fault_page[100]);

    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "exec", "two words", "", NULL};
        char *env[] = {"HELLO=world", NULL};
        execve(argv[0], args, env);
        perror("execve");
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    describe("execve child", status);
    printf("END hello_musl\n");
    fflush(stdout);
    /* As init (on Linux and on pageos), power off instead of returning:
     * Linux panics when init exits. */
    if (getpid() == 1) reboot(RB_POWER_OFF);
    return 0;
}
