/* Pipes, poll and select, fork-like clone, and job-control stops, one
 * check per line, the same binary on pageos and on Linux (built with
 * musl-gcc -static and gcc -static by boot/tests/programs.rs, which runs
 * both from userland/real/programs.list and compares the kernels' lines).
 * It prints no pid, address or time; errno values by name. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EPIPE: return "EPIPE";
    case EINTR: return "EINTR";
    case ECHILD: return "ECHILD";
    case EFAULT: return "EFAULT";
    case ESPIPE: return "ESPIPE";
    case ENOTSOCK: return "ENOTSOCK";
    case ESRCH: return "ESRCH";
    case EPERM: return "EPERM";
    case EIO: return "EIO";
    case ENOTTY: return "ENOTTY";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case ERANGE: return "ERANGE";
    default: return "other";
    }
}

#define E(call) ((call) == -1 ? ename(errno) : "ok")

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void nap(int ms) {
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status)) printf("%s: exit %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) printf("%s: signal %d\n", what, WTERMSIG(status));
    else if (WIFSTOPPED(status)) printf("%s: stopped %d\n", what, WSTOPSIG(status));
    else if (WIFCONTINUED(status)) printf("%s: continued\n", what);
    else printf("%s: status %#x\n", what, status);
}

static int reap(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) printf("waitpid: %s\n", ename(errno));
    return status;
}

static void basics(void) {
    int p[2];
    char buf[64];
    printf("pipe: %s", E(pipe(p)));
    struct stat st;
    fstat(p[0], &st);
    printf(" fifo %d", S_ISFIFO(st.st_mode));
    printf(" write %zd", write(p[1], "hello", 5));
    printf(" read %zd [%.5s]", read(p[0], buf, sizeof buf), buf);
    printf(" wrong-end %s", E(write(p[0], "x", 1)));
    printf(" lseek %s", E(lseek(p[0], 0, SEEK_SET)));
    printf(" shutdown %s\n", E(shutdown(p[0], SHUT_RD)));
    close(p[1]);
    printf("pipe eof: %zd\n", read(p[0], buf, sizeof buf));
    close(p[0]);

    printf("pipe2: bad-flags %s", E(pipe2(p, 0x1)));
    printf(" nonblock %s", E(pipe2(p, O_NONBLOCK | O_CLOEXEC)));
    printf(" cloexec %d", fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    printf(" empty-read %s", E(read(p[0], buf, sizeof buf)));
    static char block[4096];
    long total = 0;
    ssize_t n;
    while ((n = write(p[1], block, sizeof block)) > 0) total += n;
    printf(" capacity %ld then %s", total, ename(errno));
    printf(" efault %s\n", E(syscall(SYS_pipe, 8L)));
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    printf("no reader: %s", E(write(p[1], "x", 1)));
    close(p[1]);
    signal(SIGPIPE, SIG_DFL);
    pipe(p);
    close(p[0]);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        write(p[1], "x", 1);
        _exit(0);
    }
    close(p[1]);
    describe(" writer", reap(child));
}

/* A reader blocks until a writer in another process comes; a megabyte
 * goes through in pieces and arrives whole. */
static void blocking(void) {
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        nap(50);
        static unsigned char data[1 << 20];
        for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 7 + i / 4096);
        size_t done = 0;
        while (done < sizeof data) {
            ssize_t n = write(p[1], data + done, sizeof data - done);
            if (n <= 0) _exit(1);
            done += n;
        }
        _exit(0);
    }
    close(p[1]);
    long start = now_ms();
    unsigned long sum = 0, bytes = 0;
    unsigned char buf[3000];
    ssize_t n;
    int first = 1;
    while ((n = read(p[0], buf, sizeof buf)) > 0) {
        if (first) printf("blocking read: waited %d", now_ms() - start >= 40);
        first = 0;
        for (ssize_t i = 0; i < n; i++, bytes++)
            sum = sum * 31 + (buf[i] ^ (unsigned char)(bytes * 7 + bytes / 4096));
    }
    printf(" bytes %lu mismatch-hash %lu\n", bytes, sum);
    describe("writer", reap(child));
    close(p[0]);
}

static void polling(void) {
    int p[2];
    pipe(p);
    struct pollfd fds[3] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}, {99, POLLIN, 0}};
    int r = poll(fds, 3, 0);
    printf("poll: empty %d [%#x %#x %#x]", r, fds[0].revents, fds[1].revents, fds[2].revents);
    write(p[1], "ab", 2);
    r = poll(fds, 2, 0);
    printf(" data %d [%#x]", r, fds[0].revents);
    long start = now_ms();
    char buf[4];
    read(p[0], buf, 2);
    r = poll(fds, 1, 30);
    printf(" timeout %d waited %d", r, now_ms() - start >= 30);
    close(p[1]);
    r = poll(fds, 1, -1);
    printf(" hangup %d [%#x]", r, fds[0].revents);
    struct pollfd neg = {-1, POLLIN, 7};
    r = poll(&neg, 1, 0);
    printf(" negative-fd %d [%#x]", r, neg.revents);
    printf(" efault %s\n", E(syscall(SYS_poll, 8L, 1L, 0L)));
    close(p[0]);

    pipe(p);
    close(p[0]);
    struct pollfd w = {p[1], POLLOUT, 0};
    r = poll(&w, 1, 0);
    printf("poll no reader: %d [%#x]\n", r, w.revents);
    close(p[1]);

    /* A child writes later: poll sleeps until then. */
    pipe(p);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        nap(50);
        write(p[1], "z", 1);
        _exit(0);
    }
    struct pollfd in = {p[0], POLLIN, 0};
    start = now_ms();
    r = poll(&in, 1, 5000);
    printf("poll wakes: %d [%#x] waited %d\n", r, in.revents, now_ms() - start >= 40);
    reap(child);
    close(p[0]);
    close(p[1]);
}

static void selecting(void) {
    int p[2];
    pipe(p);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    int n = select(p[1] + 1, &r, &w, NULL, &tv);
    printf("select: %d read %d write %d", n, FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
    write(p[1], "q", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    n = select(p[0] + 1, &r, NULL, NULL, NULL);
    printf(" data %d read %d", n, FD_ISSET(p[0], &r));
    char c;
    read(p[0], &c, 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    long start = now_ms();
    tv.tv_usec = 30000;
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf(" timeout %d waited %d", n, now_ms() - start >= 30);
    FD_ZERO(&r);
    /* Below 64: Linux ignores descriptors past its table's size. */
    FD_SET(50, &r);
    tv.tv_usec = 0;
    printf(" bad-fd %s", E(select(51, &r, NULL, NULL, &tv)));
    struct timespec ts = {0, 0};
    FD_ZERO(&w);
    FD_SET(p[1], &w);
    printf(" pselect %d\n", pselect(p[1] + 1, NULL, &w, NULL, &ts, NULL));
    close(p[0]);
    close(p[1]);
}

static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }

/* ppoll and sigsuspend unblock a signal only while they wait. */
static void masks(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t block, old, during;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &old);
    kill(getpid(), SIGUSR1);
    printf("ppoll: pending-while-blocked %d", got);
    sigemptyset(&during);
    int p[2];
    pipe(p);
    struct pollfd in = {p[0], POLLIN, 0};
    int r = ppoll(&in, 1, NULL, &during);
    printf(" ppoll %s handler %d", r == -1 ? ename(errno) : "ok", got);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf(" mask-back %d", sigismember(&now, SIGUSR1));
    got = 0;
    kill(getpid(), SIGUSR1);
    r = sigsuspend(&during);
    printf(" sigsuspend %s handler %d", r == -1 ? ename(errno) : "ok", got);
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf(" mask-back %d\n", sigismember(&now, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    close(p[1]);
}

static void clones(void) {
    fflush(stdout);
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(5);
    describe("clone as fork", reap(pid));
    pid_t tid_in_child = 0, tid_in_parent = 0;
    fflush(stdout);
    pid = syscall(SYS_clone, SIGCHLD | CLONE_CHILD_SETTID | CLONE_PARENT_SETTID, 0,
                  &tid_in_parent, &tid_in_child, 0);
    if (pid == 0) _exit(tid_in_child == getpid() ? 0 : 1);
    describe("clone settid", reap(pid));
    printf("clone parent-settid %d\n", tid_in_parent == pid);
    printf("clone thread: %s\n", E(syscall(SYS_clone, CLONE_THREAD, 0, 0, 0, 0)));
    fflush(stdout);
    pid = vfork();
    if (pid == 0) _exit(6);
    describe("vfork", reap(pid));
    /* posix_spawn (glibc's and musl's) is clone(CLONE_VM | CLONE_VFORK). */
    fflush(stdout);
    char *argv[] = {"busybox", "false", NULL};
    pid_t spawned;
    int r = posix_spawn(&spawned, "/bin/busybox", NULL, NULL, argv, NULL);
    printf("posix_spawn: %s ", r ? "failed" : "ok");
    describe("busybox false", r ? 0 : reap(spawned));
}

/* Job-control stops: SIGSTOP and SIGTSTP stop, SIGCONT continues, and
 * wait4 reports both with WUNTRACED and WCONTINUED. SIGTSTP stops only a
 * process whose group is not orphaned (Linux counts no member whose
 * parent is init), so a middle process runs the checks on a child it
 * puts in a group of its own. */
static void stops(void) {
    fflush(stdout);
    pid_t middle = fork();
    if (middle != 0) {
        describe("stops", reap(middle));
        return;
    }
    int p[2];
    pipe(p);
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        setpgid(0, 0);
        char c;
        while (read(p[0], &c, 1) == 1) write(1, "", 0);
        _exit(4);
    }
    close(p[0]);
    int status = 0;
    setpgid(child, child);
    printf("stop: kill %s", E(kill(child, SIGSTOP)));
    pid_t w = waitpid(child, &status, WUNTRACED);
    printf(" waited %d", w == child);
    describe("", status);
    printf("stop: nohang-again %d", waitpid(child, &status, WNOHANG | WUNTRACED));
    printf(" cont %s", E(kill(child, SIGCONT)));
    w = waitpid(child, &status, WCONTINUED);
    printf(" waited %d", w == child);
    describe("", status);
    kill(child, SIGTSTP);
    w = waitpid(child, &status, WUNTRACED);
    describe("tstp", status);
    kill(-child, SIGCONT);
    w = waitpid(child, &status, WCONTINUED);
    describe("group cont", status);
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    /* A stopped process still dies of SIGKILL. */
    kill(child, SIGKILL);
    describe("killed while stopped", reap(child));
    fflush(stdout);
    _exit(0);
}

/* Process groups and sessions as an init sees them. */
static void groups(void) {
    printf("groups: init pgrp %d sid %d", (int)getpgrp(), (int)getsid(0));
    printf(" bad-pgid %s", E(setpgid(0, -1)));
    printf(" missing %s", E(getpgid(99999)));
    printf(" not-child %s\n", E(setpgid(99999, 0)));
    int p[2];
    pipe(p);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char c;
        read(p[0], &c, 1);
        int leader = setsid();
        int ok = leader == getpid() && getsid(0) == getpid() && getpgrp() == getpid();
        int again = setsid() == -1 && errno == EPERM;
        int into_other = setpgid(0, getppid()) == -1 && errno == EPERM;
        _exit(ok + 2 * again + 4 * into_other);
    }
    printf("setpgid child: %s", E(setpgid(child, child)));
    printf(" pgid-is-pid %d", getpgid(child) == child);
    printf(" back %s", E(setpgid(child, getpgrp())));
    printf(" same %d\n", getpgid(child) == getpgrp());
    write(p[1], "g", 1);
    describe("setsid child", reap(child));
    close(p[0]);
    close(p[1]);
    /* An exited child not yet reaped is still its group's member: a
     * shell's pipeline puts its second command into the first's group
     * even when the first has already exited (busybox sh's
     * `echo one two | wc -w`). End of file on the pipe says it exited. */
    pipe(p);
    fflush(stdout);
    pid_t first = fork();
    if (first == 0) {
        close(p[0]);
        setpgid(0, 0);
        _exit(0);
    }
    setpgid(first, first);
    close(p[1]);
    char c;
    while (read(p[0], &c, 1) == 1) {}
    close(p[0]);
    pipe(p);
    fflush(stdout);
    pid_t second = fork();
    if (second == 0) {
        close(p[1]);
        read(p[0], &c, 1);
        _exit(getpgrp() == first ? 0 : 1);
    }
    close(p[0]);
    printf("zombie group: join %s\n", E(setpgid(second, first)));
    write(p[1], "j", 1);
    close(p[1]);
    describe("zombie group: second", reap(second));
    describe("zombie group: first", reap(first));
}

/* The current directory: chdir, fchdir, getcwd, relative paths. */
static void dirs(void) {
    char buf[256];
    printf("cwd: start [%s]", getcwd(buf, sizeof buf));
    mkdir("/tmp", 01777);
    mkdir("/tmp/cwd", 0755);
    mkdir("/tmp/cwd/sub", 0755);
    const char *r = E(chdir("/tmp/cwd"));
    printf(" chdir %s [%s]", r, getcwd(buf, sizeof buf));
    int fd = open("rel.txt", O_CREAT | O_WRONLY, 0644);
    printf(" relative-create %d", fd >= 0);
    close(fd);
    printf(" seen-absolute %s", E(access("/tmp/cwd/rel.txt", F_OK)));
    r = E(chdir("sub/../sub/..//sub"));
    printf(" dotdot %s [%s]", r, getcwd(buf, sizeof buf));
    printf(" small %s", getcwd(buf, 3) ? "ok" : ename(errno));
    printf(" file %s", E(chdir("/tmp/cwd/rel.txt")));
    printf(" missing %s", E(chdir("/none")));
    int dir = open("/tmp/cwd", O_RDONLY | O_DIRECTORY);
    chdir("/");
    r = E(fchdir(dir));
    printf(" fchdir %s [%s]", r, getcwd(buf, sizeof buf));
    close(dir);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) _exit(access("rel.txt", F_OK) == 0 ? 0 : 1);
    describe(" inherited", reap(child));
    chdir("/");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("BEGIN\n");
    basics();
    blocking();
    polling();
    selecting();
    masks();
    clones();
    groups();
    dirs();
    stops();
    printf("END\n");
    return 0;
}
