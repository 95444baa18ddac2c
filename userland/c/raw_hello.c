/* A freestanding C program: no libc, raw Linux syscalls only.
 * Built by boot/tests with: gcc -static -nostdlib -ffreestanding -O2
 * It prints a line, checks that SSE arithmetic survives timer preemption
 * (the kernel must save and restore XMM registers at each switch), and
 * exits with the status given as argv[1] (default 0). */

typedef unsigned long u64;

static long sys3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static u64 length(const char *s) {
    u64 n = 0;
    while (s[n]) n++;
    return n;
}

static void say(const char *s) { sys3(1, 1, (long)s, (long)length(s)); }

static int parse(const char *s) {
    int v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    return v;
}

/* Keep a running sum in XMM registers over enough iterations to span many
 * timer ticks; a kernel that loses SSE state across switches corrupts it. */
static int sse_survives(void) {
    volatile double step = 0.5;
    double acc = 0.0;
    for (long i = 0; i < 20000000; i++) acc += step;
    return acc == 10000000.0;
}

void c_main(u64 *sp) {
    long argc = (long)sp[0];
    char **argv = (char **)(sp + 1);
    say("hello from freestanding C\n");
    say(sse_survives() ? "sse ok\n" : "sse CORRUPTED\n");
    sys3(231, argc > 1 ? parse(argv[1]) : 0, 0, 0);
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call c_main\n ud2\n");
