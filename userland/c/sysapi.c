/* The system calls real programs need beyond the core set, one check per
 * line, the same binary on pageos and on Linux (built with musl-gcc -static
 * and with gcc -static against glibc by boot/tests/programs.rs, which
 * compares both kernels' lines between BEGIN and END): names and
 * attributes (link, symlink, rename, chmod, chown, utimensat, statx,
 * statfs), record locks, resource limits and usage, /dev, /proc, mount,
 * socketpair, sendfile, prctl, ids.
 *
 * It runs as init (pid 1): it mounts proc, devtmpfs and tmpfs itself, as
 * an init on Linux must. It prints no pid, address or time (they differ);
 * errno values are printed by name. */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/sysmacros.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "other";
    }
}

/* The errno of a call that returns -1 on failure: "ok" on success. */
#define E(call) ((call) == -1 ? ename(errno) : "ok")

static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) perror("write");
        close(fd);
    }
}

/* The first `cap - 1` bytes of a file, NUL-terminated; -1 if it cannot be read. */
static ssize_t slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += r;
    close(fd);
    buf[n] = 0;
    return n;
}

static int status_of(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static void describe(const char *what, int status) {
    if (WIFEXITED(status)) printf("%s: exit %d\n", what, WEXITSTATUS(status));
    else printf("%s: signal %d\n", what, WTERMSIG(status));
}

static void names(void) {
    put("/tmp/f", "twelve bytes");
    struct stat a, b;
    printf("link: %s", E(link("/tmp/f", "/tmp/g")));
    stat("/tmp/f", &a);
    stat("/tmp/g", &b);
    printf(" nlink %d same-inode %d", (int)a.st_nlink, a.st_ino == b.st_ino);
    printf(" again %s", E(link("/tmp/f", "/tmp/g")));
    mkdir("/tmp/d", 0755);
    printf(" dir %s", E(link("/tmp/d", "/tmp/d2")));
    unlink("/tmp/f");
    stat("/tmp/g", &b);
    printf(" after-unlink nlink %d size %ld\n", (int)b.st_nlink, (long)b.st_size);

    char buf[64];
    printf("symlink: %s", E(symlink("g", "/tmp/l")));
    ssize_t n = readlink("/tmp/l", buf, sizeof buf);
    printf(" readlink %zd [%.*s]", n, (int)(n > 0 ? n : 0), buf);
    printf(" short %zd", readlink("/tmp/l", buf, 1));
    lstat("/tmp/l", &a);
    stat("/tmp/l", &b);
    printf(" lstat-link %d stat-reg %d size %ld", S_ISLNK(a.st_mode), S_ISREG(b.st_mode),
           (long)b.st_size);
    printf(" nofollow %s", E(open("/tmp/l", O_RDONLY | O_NOFOLLOW)));
    printf(" readlink-file %s\n", E(readlink("/tmp/g", buf, sizeof buf)));
    symlink("loop2", "/tmp/loop1");
    symlink("loop1", "/tmp/loop2");
    symlink("../g", "/tmp/d/up");
    symlink("/tmp/d", "/tmp/dl");
    int fd = open("/tmp/d/up", O_RDONLY);
    n = fd >= 0 ? read(fd, buf, 6) : -1;
    printf("symlink walk: loop %s relative [%.*s] dir-link %s trailing-slash %s\n",
           E(open("/tmp/loop1", O_RDONLY)), (int)(n > 0 ? n : 0), buf,
           E(stat("/tmp/dl/up", &a)), E(stat("/tmp/g/", &a)));
    if (fd >= 0) close(fd);

    put("/tmp/r1", "one");
    put("/tmp/r2", "two");
    printf("rename: %s", E(rename("/tmp/r1", "/tmp/r3")));
    printf(" old-gone %s", E(stat("/tmp/r1", &a)));
    printf(" noreplace %s", E(syscall(SYS_renameat2, AT_FDCWD, "/tmp/r3", AT_FDCWD, "/tmp/r2", 1)));
    printf(" exchange %s", E(syscall(SYS_renameat2, AT_FDCWD, "/tmp/r3", AT_FDCWD, "/tmp/r2", 2)));
    slurp("/tmp/r2", buf, sizeof buf);
    printf(" r2=[%s]", buf);
    slurp("/tmp/r3", buf, sizeof buf);
    printf(" r3=[%s]", buf);
    mkdir("/tmp/d/sub", 0755);
    mkdir("/tmp/full", 0755);
    put("/tmp/full/x", "x");
    printf(" into-itself %s", E(rename("/tmp/d", "/tmp/d/sub/d")));
    printf(" file-over-dir %s", E(rename("/tmp/r2", "/tmp/d")));
    printf(" dir-over-file %s", E(rename("/tmp/d/sub", "/tmp/r2")));
    printf(" over-nonempty %s", E(rename("/tmp/d/sub", "/tmp/full")));
    printf(" dir %s", E(rename("/tmp/d/sub", "/tmp/sub2")));
    printf(" both-flags %s\n", E(syscall(SYS_renameat2, AT_FDCWD, "/tmp/r3", AT_FDCWD, "/tmp/r2", 3)));
}

/* struct statx's leading fields (Linux's include/uapi/linux/stat.h). */
struct statx_head {
    uint32_t mask, blksize;
    uint64_t attributes;
    uint32_t nlink, uid, gid;
    uint16_t mode, pad;
    uint64_t ino, size, blocks, attributes_mask;
    int64_t atime_sec;
    uint32_t atime_nsec, pad1;
    uint8_t rest[256 - 80];
};

static void attributes(void) {
    struct stat st;
    put("/tmp/a", "attr");
    printf("chmod: %s", E(chmod("/tmp/a", 0640)));
    stat("/tmp/a", &st);
    printf(" mode %o", st.st_mode & 07777);
    int fd = open("/tmp/a", O_RDONLY);
    printf(" fchmod %s", E(fchmod(fd, 0604)));
    fstat(fd, &st);
    printf(" mode %o", st.st_mode & 07777);
    printf(" proc %s\n", E(chmod("/proc/self/status", 0777)));
    printf("chown: %s", E(chown("/tmp/a", 1000, 2000)));
    stat("/tmp/a", &st);
    printf(" %d:%d", (int)st.st_uid, (int)st.st_gid);
    printf(" keep-uid %s", E(chown("/tmp/a", -1, 3000)));
    stat("/tmp/a", &st);
    printf(" %d:%d", (int)st.st_uid, (int)st.st_gid);
    printf(" fchown %s", E(fchown(fd, 7, 8)));
    fstat(fd, &st);
    printf(" %d:%d", (int)st.st_uid, (int)st.st_gid);
    symlink("/tmp/a", "/tmp/d/al");
    printf(" lchown %s", E(lchown("/tmp/d/al", 9, 9)));
    struct stat link, target;
    lstat("/tmp/d/al", &link);
    stat("/tmp/d/al", &target);
    printf(" link %d target %d\n", (int)link.st_uid, (int)target.st_uid);
    close(fd);

    struct timespec times[2] = {{1000, 500}, {2000, 0}};
    printf("utimensat: %s", E(utimensat(AT_FDCWD, "/tmp/a", times, 0)));
    stat("/tmp/a", &st);
    printf(" atime %ld.%09ld mtime %ld", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
           (long)st.st_mtim.tv_sec);
    struct timespec omit[2] = {{5, UTIME_OMIT}, {3000, 0}};
    utimensat(AT_FDCWD, "/tmp/a", omit, 0);
    stat("/tmp/a", &st);
    printf(" omit: atime %ld mtime %ld", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    printf(" bad-nsec %s", E(utimensat(AT_FDCWD, "/tmp/a", bad, 0)));
    fd = open("/tmp/a", O_RDONLY);
    printf(" futimens %s", E(futimens(fd, NULL)));
    fstat(fd, &st);
    printf(" moved %d\n", st.st_mtim.tv_sec != 3000);
    close(fd);

    struct statx_head sx;
    memset(&sx, 0, sizeof sx);
    long r = syscall(SYS_statx, AT_FDCWD, "/tmp/a", 0, 0x7ff, &sx);
    stat("/tmp/a", &st);
    printf("statx: %s basic %d size %d mode %d ino %d nlink %d uid %u\n", r ? ename(errno) : "ok",
           (sx.mask & 0x7ff) == 0x7ff, sx.size == (uint64_t)st.st_size,
           sx.mode == st.st_mode, sx.ino == st.st_ino, sx.nlink == st.st_nlink, sx.uid);
    printf("statx errors: flags %s reserved %s\n",
           E(syscall(SYS_statx, AT_FDCWD, "/tmp/a", 0x10000, 0x7ff, &sx)),
           E(syscall(SYS_statx, AT_FDCWD, "/tmp/a", 0, 0x80000000u, &sx)));

    struct statfs fs;
    statfs("/tmp", &fs);
    printf("statfs: tmp %#lx bsize %ld namelen %ld", (long)fs.f_type, (long)fs.f_bsize,
           (long)fs.f_namelen);
    statfs("/proc", &fs);
    printf(" proc %#lx", (long)fs.f_type);
    fd = open("/dev/null", O_RDONLY);
    fstatfs(fd, &fs);
    printf(" dev %#lx", (long)fs.f_type);
    close(fd);
    printf(" missing %s\n", E(statfs("/nonexistent", &fs)));

    printf("access: dir %s missing %s", E(access("/tmp", W_OK)), E(access("/none", F_OK)));
    put("/tmp/x", "x");
    chmod("/tmp/x", 0644);
    printf(" exec-without-x %s", E(access("/tmp/x", X_OK)));
    printf(" read-as-root %s", E(access("/tmp/x", R_OK | W_OK)));
    chmod("/tmp/x", 0700);
    printf(" exec %s", E(access("/tmp/x", X_OK)));
    printf(" bad-mode %s", E(access("/tmp/x", 8)));
    printf(" faccessat %s", E(faccessat(AT_FDCWD, "/tmp/d/al", R_OK, 0)));
    printf(" faccessat2 %s\n", E(syscall(439, AT_FDCWD, "/tmp/x", X_OK, AT_EACCESS)));

    fd = open("/tmp/x", O_RDWR);
    printf("fsync: %s fdatasync %s bad %s\n", E(fsync(fd)), E(fdatasync(fd)), E(fsync(99)));
    close(fd);
}

static int lock(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

/* F_GETLK's answer for [start, start+len) as text. */
static const char *probe(int fd, int cmd, short type, off_t start, off_t len, pid_t owner) {
    static char out[64];
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) != 0) return ename(errno);
    if (fl.l_type == F_UNLCK) return "free";
    snprintf(out, sizeof out, "%s@%ld+%ld/%s", fl.l_type == F_WRLCK ? "W" : "R",
             (long)fl.l_start, (long)fl.l_len,
             fl.l_pid == owner ? "owner" : fl.l_pid == -1 ? "ofd" : "other");
    return out;
}

static void locks(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int fd = open("/tmp/db", O_RDWR | O_CREAT, 0644);
    pid_t me = getpid();
    printf("posix lock: %s", E(lock(fd, F_SETLK, F_WRLCK, 0, 100)));
    printf(" own-view %s", probe(fd, F_GETLK, F_WRLCK, 0, 10, me));
    lock(fd, F_SETLK, F_UNLCK, 40, 20);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        int c = open("/tmp/db", O_RDWR);
        printf(" child-sees %s", probe(c, F_GETLK, F_WRLCK, 30, 40, me));
        printf(" hole %s", probe(c, F_GETLK, F_WRLCK, 45, 10, me));
        printf(" setlk %s", E(lock(c, F_SETLK, F_RDLCK, 0, 1)));
        printf(" beyond %s", E(lock(c, F_SETLK, F_WRLCK, 200, 0)));
        fflush(stdout);
        _exit(0);
    }
    status_of(child);
    /* Closing any descriptor of the file drops the process's locks. */
    int other = open("/tmp/db", O_RDONLY);
    close(other);
    child = fork();
    if (child == 0) {
        int c = open("/tmp/db", O_RDWR);
        printf(" after-close %s", E(lock(c, F_SETLK, F_WRLCK, 0, 100)));
        printf(" eof-lock %s\n", probe(c, F_GETLK, F_WRLCK, 1000, 1, getpid()));
        fflush(stdout);
        _exit(0);
    }
    status_of(child);

    /* OFD locks: per open file description, even within one process. */
    int a = open("/tmp/db", O_RDWR), b = open("/tmp/db", O_RDWR);
    printf("ofd lock: %s", E(lock(a, F_OFD_SETLK, F_WRLCK, 0, 10)));
    printf(" other-ofd %s", E(lock(b, F_OFD_SETLK, F_WRLCK, 5, 1)));
    printf(" view %s", probe(b, F_OFD_GETLK, F_WRLCK, 0, 100, me));
    int dup_a = dup(a);
    close(dup_a);
    printf(" after-dup-close %s", E(lock(b, F_OFD_SETLK, F_RDLCK, 5, 1)));
    struct flock pidset = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    printf(" l_pid %s", E(fcntl(b, F_OFD_SETLK, &pidset)));
    printf(" posix-vs-ofd %s", E(lock(b, F_SETLK, F_WRLCK, 0, 1)));
    close(a);
    printf(" after-last-close %s", E(lock(b, F_OFD_SETLK, F_WRLCK, 0, 10)));
    int ro = open("/tmp/db", O_RDONLY);
    printf(" write-lock-on-readonly %s bad-type %s\n", E(lock(ro, F_SETLK, F_WRLCK, 0, 1)),
           E(lock(ro, F_SETLK, 7, 0, 1)));
    close(b);
    close(ro);

    /* F_SETLKW waits for the holder. */
    lock(fd, F_SETLK, F_WRLCK, 0, 1);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        int c = open("/tmp/db", O_RDWR);
        if (write(sv[1], "w", 1) != 1) _exit(2);
        struct timespec t0, t1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        int r = lock(c, F_SETLKW, F_WRLCK, 0, 1);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        /* The wait sleeps: it used under 50 ms of the holder's 200. */
        long used_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (write(sv[1], r != 0 ? "x" : used_ms < 50 ? "g" : "b", 1) != 1) _exit(2);
        _exit(0);
    }
    char ch = 0;
    if (read(sv[0], &ch, 1) != 1) ch = '?';
    for (int i = 0; i < 50; i++) sched_yield();
    usleep(200000);
    lock(fd, F_SETLK, F_UNLCK, 0, 1);
    if (read(sv[0], &ch, 1) != 1) ch = '?';
    describe("setlkw: waiter got the lock", ch == 'g' || ch == 'b' ? status_of(child) : 0xff00);
    printf("setlkw: the waiter slept (no CPU while it waited): %s\n", ch == 'g' ? "yes" : "no");
    close(fd);
    close(sv[0]);
    close(sv[1]);
}

static void limits(void) {
    static const int which[] = {RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK,
                                RLIMIT_CORE, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS};
    static const char *names[] = {"cpu", "fsize", "data", "stack", "core", "nofile", "memlock", "as"};
    printf("rlimits:");
    for (int i = 0; i < 8; i++) {
        struct rlimit rl;
        getrlimit(which[i], &rl);
        if (rl.rlim_cur == RLIM_INFINITY) printf(" %s=inf", names[i]);
        else printf(" %s=%lu", names[i], (unsigned long)rl.rlim_cur);
        if (rl.rlim_max == RLIM_INFINITY) printf("/inf");
        else printf("/%lu", (unsigned long)rl.rlim_max);
    }
    printf("\n");
    struct rlimit bad = {10, 5}, big = {8, 8}, old;
    printf("rlimit errors: cur>max %s resource %s prlimit-self %s\n",
           E(setrlimit(RLIMIT_NOFILE, &bad)), E(setrlimit(99, &big)),
           E(prlimit(0, RLIMIT_NOFILE, NULL, &old)));

    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct rlimit ten = {10, 10};
        setrlimit(RLIMIT_NOFILE, &ten);
        int opened = 0;
        while (open("/tmp/db", O_RDONLY) >= 0) opened++;
        printf("nofile: opened %d then %s", opened, ename(errno));
        printf(" dup2-past %s", E(dup2(0, 10)));
        printf(" dupfd-past %s", E(fcntl(0, F_DUPFD, 10)));
        struct rlimit raise = {10, 20};
        setuid(1000);
        printf(" raise-hard-as-user %s\n", E(setrlimit(RLIMIT_NOFILE, &raise)));
        fflush(stdout);
        _exit(0);
    }
    status_of(child);

    child = fork();
    if (child == 0) {
        struct rlimit as = {64 << 20, 64 << 20};
        setrlimit(RLIMIT_AS, &as);
        void *big_map = mmap(NULL, 128 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("rlimit_as: mmap-128M %s", big_map == MAP_FAILED ? ename(errno) : "ok");
        void *small = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf(" mmap-1M %s", small == MAP_FAILED ? ename(errno) : "ok");
        long cur = syscall(SYS_brk, 0);
        long grown = syscall(SYS_brk, cur + (100 << 20));
        printf(" brk-100M %s", grown == cur ? "refused" : "grew");
        grown = syscall(SYS_brk, cur + (64 << 10));
        printf(" brk-64K %s\n", grown == cur + (64 << 10) ? "grew" : "refused");
        fflush(stdout);
        _exit(0);
    }
    status_of(child);

    child = fork();
    if (child == 0) {
        struct rlimit data = {32 << 20, 32 << 20};
        setrlimit(RLIMIT_DATA, &data);
        void *p = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("rlimit_data: private-rw %s", p == MAP_FAILED ? ename(errno) : "ok");
        p = mmap(NULL, 64 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf(" private-ro %s", p == MAP_FAILED ? ename(errno) : "ok");
        p = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        printf(" shared-rw %s", p == MAP_FAILED ? ename(errno) : "ok");
        long cur = syscall(SYS_brk, 0);
        printf(" brk-40M %s\n", syscall(SYS_brk, cur + (40 << 20)) == cur ? "refused" : "grew");
        fflush(stdout);
        _exit(0);
    }
    status_of(child);

    child = fork();
    if (child == 0) {
        struct rlimit small = {64 << 10, 64 << 10};
        setrlimit(RLIMIT_MEMLOCK, &small);
        void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("rlimit_memlock: root-mlock-1M %s", E(mlock(p, 1 << 20)));
        munlock(p, 1 << 20);
        setuid(1000);
        printf(" user-mlock-1M %s", E(mlock(p, 1 << 20)));
        printf(" user-mlock-16K %s", E(mlock(p, 16 << 10)));
        void *q = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
        printf(" map-locked-1M %s\n", q == MAP_FAILED ? ename(errno) : "ok");
        fflush(stdout);
        _exit(0);
    }
    status_of(child);
}

/* Recurse through `kib` KiB of stack (the stack-limit children). */
static int deep(int kib) {
    volatile char frame[1024];
    frame[0] = (char)kib;
    if (kib <= 1) return frame[0];
    return deep(kib - 1) + frame[0];
}

static void stack_limit(const char *self) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct rlimit rl = {256 << 10, RLIM_INFINITY};
        setrlimit(RLIMIT_STACK, &rl);
        execl(self, self, "stack", "1024", (char *)NULL);
        _exit(127);
    }
    describe("stack limit 256K at exec, 1M deep", status_of(child));
    child = fork();
    if (child == 0) {
        execl(self, self, "stack", "1024", (char *)NULL);
        _exit(127);
    }
    describe("stack limit 8M, 1M deep", status_of(child));
    child = fork();
    if (child == 0) {
        execl(self, self, "stack-lowered", "1024", (char *)NULL);
        _exit(127);
    }
    describe("stack limit lowered to 128K after exec, 1M deep", status_of(child));
}

static void usage(void) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char *p = mmap(NULL, 4000 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        /* One fault per page, as the count below expects: no 2 MiB pages
           (transparent huge pages on Linux and pageos alike). */
        madvise(p, 4000 << 10, MADV_NOHUGEPAGE);
        for (int i = 0; i < 1000; i++) p[i * 4096] = 1;
        _exit(0);
    }
    int status;
    struct rusage ru;
    wait4(child, &status, 0, &ru);
    printf("rusage wait4: minflt>=1000 %d majflt %ld maxrss>=4000K %d", ru.ru_minflt >= 1000,
           ru.ru_majflt, ru.ru_maxrss >= 4000);
    getrusage(RUSAGE_CHILDREN, &ru);
    printf(" children: minflt>=1000 %d maxrss>=4000K %d", ru.ru_minflt >= 1000,
           ru.ru_maxrss >= 4000);
    getrusage(RUSAGE_SELF, &ru);
    printf(" self: maxrss>0 %d minflt>0 %d bad-who %s\n", ru.ru_maxrss > 0, ru.ru_minflt > 0,
           E(getrusage(5, &ru)));
    struct tms t;
    volatile unsigned long spin = 0;
    clock_t before = times(&t);
    while (t.tms_utime + t.tms_stime < 3) {
        for (int i = 0; i < 1000000; i++) spin++;
        times(&t);
    }
    (void)before;
    printf("times: cpu time counted %d\n", t.tms_utime + t.tms_stime >= 3);
}

static void devices(void) {
    char buf[64];
    int fd = open("/dev/null", O_RDWR);
    struct stat st;
    fstat(fd, &st);
    printf("/dev/null: chr %d %u:%u read %zd write %zd\n", S_ISCHR(st.st_mode), major(st.st_rdev),
           minor(st.st_rdev), read(fd, buf, sizeof buf), write(fd, "abc", 3));
    close(fd);
    fd = open("/dev/zero", O_RDWR);
    memset(buf, 'x', sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    int zeros = 1;
    for (int i = 0; i < (int)sizeof buf; i++) zeros &= buf[i] == 0;
    printf("/dev/zero: read %zd zeros %d write %zd", n, zeros, write(fd, "abc", 3));
    char *priv = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    char *shared = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf(" private-map %d", priv != MAP_FAILED && priv[100] == 0);
    priv[100] = 'p';
    shared[100] = 's';
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        priv[100] = 'c';
        shared[100] = 'c';
        _exit(0);
    }
    status_of(child);
    printf(" after child: private %c shared %c\n", priv[100], shared[100]);
    close(fd);
    fd = open("/dev/full", O_RDWR);
    printf("/dev/full: write %s read %zd", E(write(fd, "a", 1)), read(fd, buf, 8));
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    memset(buf, 0, sizeof buf);
    n = read(fd, buf, 32);
    int nonzero = 0;
    for (int i = 0; i < 32; i++) nonzero |= buf[i];
    printf(" urandom %zd nonzero %d", n, nonzero != 0);
    close(fd);
    printf(" null-mmap %s", mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, open("/dev/null", O_RDONLY), 0)
                                    == MAP_FAILED ? ename(errno) : "ok");
    stat("/dev/tty", &st);
    printf(" tty %u:%u", major(st.st_rdev), minor(st.st_rdev));
    stat("/dev/console", &st);
    printf(" console %u:%u\n", major(st.st_rdev), minor(st.st_rdev));
}

/* The line of /proc/self/status that starts with `key`, without it. */
static const char *status_field(const char *text, const char *key, char *out, size_t cap) {
    const char *p = strstr(text, key);
    if (!p) return "(missing)";
    p += strlen(key);
    while (*p == '\t' || *p == ' ') p++;
    size_t n = strcspn(p, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

static void procfs(int argc, char **argv) {
    static char text[16384];
    char buf[256], field[64];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("/proc/self: is-pid %d", atoi(buf) == getpid());
    n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf(" exe-is-argv0 %d", strcmp(buf, argv[0]) == 0);
    DIR *d = opendir("/proc");
    int found = 0, entries = 0;
    struct dirent *e;
    snprintf(field, sizeof field, "%d", (int)getpid());
    while (d && (e = readdir(d))) {
        entries++;
        found |= strcmp(e->d_name, field) == 0 && e->d_type == DT_DIR;
    }
    if (d) closedir(d);
    printf(" listed %d\n", found);

    slurp("/proc/self/status", text, sizeof text);
    printf("status:");
    static const char *keys[] = {"State:", "Threads:", "VmSwap:", "Uid:"};
    for (int i = 0; i < 4; i++) printf(" [%s]", status_field(text, keys[i], field, sizeof field));
    static const char *present[] = {"Pid:", "PPid:", "VmPeak:", "VmSize:", "VmRSS:", "VmData:",
                                    "VmStk:", "VmExe:", "VmLib:", "VmHWM:", "RssAnon:"};
    int all = 1;
    for (int i = 0; i < 11; i++) all &= strstr(text, present[i]) != NULL;
    printf(" fields %d\n", all);
    slurp("/proc/self/stat", text, sizeof text);
    int spaces = 0;
    for (char *p = text; *p; p++) spaces += *p == ' ';
    printf("stat: pid-first %d comm (%s) fields %d", atoi(text) == getpid(),
           strchr(text, '(') ? "yes" : "no", spaces + 1);
    int pgrp = -1, session = -1;
    char *paren = strrchr(text, ')');
    if (paren) sscanf(paren + 2, "%*c %*d %d %d", &pgrp, &session);
    printf(" pgrp %d session %d", pgrp == getpgrp(), session == getsid(0));
    slurp("/proc/self/statm", text, sizeof text);
    spaces = 0;
    for (char *p = text; *p; p++) spaces += *p == ' ';
    printf(" statm-fields %d", spaces + 1);
    n = slurp("/proc/self/cmdline", text, sizeof text);
    size_t want = 0;
    for (int i = 0; i < argc; i++) want += strlen(argv[i]) + 1;
    printf(" cmdline %d\n", n == (ssize_t)want && strcmp(text, argv[0]) == 0);

    prctl(PR_SET_NAME, "a-very-long-process-name");
    prctl(PR_GET_NAME, buf);
    slurp("/proc/self/comm", text, sizeof text);
    printf("prctl: name [%s] comm [%.*s]", buf, (int)strcspn(text, "\n"), text);
    slurp("/proc/self/status", text, sizeof text);
    printf(" status [%s] bad %s\n", status_field(text, "Name:", field, sizeof field),
           E(prctl(12345, 0)));

    put("/tmp/mapped", "");
    int fd = open("/tmp/mapped", O_RDWR);
    if (ftruncate(fd, 4 * 4096) != 0) perror("ftruncate");
    char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 8192);
    struct stat st;
    fstat(fd, &st);
    slurp("/proc/self/maps", text, sizeof text);
    snprintf(buf, sizeof buf, "%08lx-%08lx r--s 00002000", (unsigned long)m,
             (unsigned long)m + 8192);
    char *line = strstr(text, buf);
    char ino[32];
    snprintf(ino, sizeof ino, " %lu ", (unsigned long)st.st_ino);
    int named = line && strstr(line, "/tmp/mapped") && strstr(line, "/tmp/mapped") < strchr(line, '\n');
    int has_ino = line && strstr(line, ino) && strstr(line, ino) < strchr(line, '\n');
    printf("maps: file offset %d name %d inode %d stack %d exe %d\n", line != NULL, named, has_ino,
           strstr(text, "[stack]") != NULL, strstr(text, argv[0]) != NULL);
    slurp("/proc/self/smaps", text, sizeof text);
    static const char *smaps[] = {"Rss:", "Pss:", "Private_Dirty:", "Shared_Clean:", "Swap:",
                                  "AnonHugePages:", "KernelPageSize:        4 kB",
                                  "MMUPageSize:           4 kB", "VmFlags:"};
    printf("smaps:");
    for (int i = 0; i < 9; i++) printf(" %d", strstr(text, smaps[i]) != NULL);
    printf("\n");

    /* pagemap: the flags of touched, untouched and shared pages. */
    char *anon = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    anon[0] = 1;
    volatile char sink = anon[2 * 4096];
    (void)sink;
    char *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    sh[0] = 1;
    int pm = open("/proc/self/pagemap", O_RDONLY);
    uint64_t entry[4], shared_entry;
    pread(pm, entry, sizeof entry, (uintptr_t)anon / 4096 * 8);
    pread(pm, &shared_entry, 8, (uintptr_t)sh / 4096 * 8);
    const uint64_t flags = ~((1ull << 55) - 1);
    printf("pagemap: written %#llx pfn %d read-zero %#llx untouched %#llx shared-file %#llx",
           (unsigned long long)(entry[0] & flags), (entry[0] & ((1ull << 55) - 1)) != 0,
           (unsigned long long)(entry[2] & flags), (unsigned long long)(entry[1] & flags),
           (unsigned long long)(shared_entry & flags));
    printf(" unaligned %s", E(pread(pm, entry, 8, 3)));
    /* The child keeps the page shared until the parent has looked. */
    int hold[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, hold);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char c;
        _exit(read(hold[1], &c, 1) == 1 ? 0 : 1);
    }
    pread(pm, entry, 8, (uintptr_t)anon / 4096 * 8);
    printf(" after-fork %#llx\n", (unsigned long long)(entry[0] & flags));
    if (write(hold[0], "x", 1) != 1) perror("write");
    status_of(child);
    close(hold[0]);
    close(hold[1]);
    close(pm);

    /* mem: this process's and a child's memory through the page tables. */
    static volatile long secret = 1234;
    int mem = open("/proc/self/mem", O_RDWR);
    long got = 0, newval = 5678;
    pread(mem, &got, sizeof got, (uintptr_t)&secret);
    pwrite(mem, &newval, sizeof newval, (uintptr_t)&secret);
    printf("mem: read %ld wrote %ld unmapped %s", got, secret, E(pread(mem, &got, 8, 4096)));
    close(mem);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        secret = 4321;
        if (write(sv[1], "r", 1) != 1) _exit(2);
        char c;
        if (read(sv[1], &c, 1) != 1) _exit(3);
        _exit(secret == 1111 ? 0 : 1);
    }
    char c;
    if (read(sv[0], &c, 1) != 1) c = 0;
    snprintf(buf, sizeof buf, "/proc/%d/mem", (int)child);
    mem = open(buf, O_RDWR);
    got = 0;
    pread(mem, &got, sizeof got, (uintptr_t)&secret);
    newval = 1111;
    pwrite(mem, &newval, sizeof newval, (uintptr_t)&secret);
    close(mem);
    if (write(sv[0], "g", 1) != 1) perror("write");
    printf(" child's %ld", got);
    describe(" child saw the write", status_of(child));
    close(sv[0]);
    close(sv[1]);

    slurp("/proc/meminfo", text, sizeof text);
    printf("meminfo fields:");
    for (char *p = text; *p;) {
        size_t key = strcspn(p, ":");
        if (strncmp(p, "KernelHeap", key) != 0) printf(" %.*s", (int)key, p);
        p += strcspn(p, "\n");
        if (*p) p++;
    }
    printf("\n");
    slurp("/proc/sys/vm/max_map_count", buf, sizeof buf);
    printf("sysctl: max_map_count %.*s", (int)strcspn(buf, "\n"), buf);
    put("/proc/sys/vm/max_map_count", "70000\n");
    slurp("/proc/sys/vm/max_map_count", buf, sizeof buf);
    printf(" written %.*s", (int)strcspn(buf, "\n"), buf);
    put("/proc/sys/vm/max_map_count", "65530\n");
    slurp("/proc/sys/vm/mmap_min_addr", buf, sizeof buf);
    printf(" mmap_min_addr %.*s", (int)strcspn(buf, "\n"), buf);
    slurp("/proc/sys/vm/overcommit_memory", buf, sizeof buf);
    printf(" overcommit-is-a-mode %d\n", buf[0] >= '0' && buf[0] <= '2');
    double up = 0, idle = 0;
    slurp("/proc/uptime", buf, sizeof buf);
    int fields = sscanf(buf, "%lf %lf", &up, &idle);
    slurp("/proc/loadavg", buf, sizeof buf);
    int lf = 0;
    for (char *p = buf; *p; p++) lf += *p == ' ';
    slurp("/proc/mounts", text, sizeof text);
    printf("uptime fields %d positive %d loadavg fields %d mounts proc %d tmp %d", fields, up > 0,
           lf + 1, strstr(text, " /proc proc ") != NULL, strstr(text, " /tmp tmpfs ") != NULL);
    slurp("/proc/cpuinfo", text, sizeof text);
    printf(" cpuinfo %d\n", strncmp(text, "processor", 9) == 0);
    close(fd);
}

static void sockets_and_more(void) {
    int sv[2];
    char buf[128];
    signal(SIGPIPE, SIG_IGN);
    printf("socketpair: %s", E(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)));
    printf(" write %zd", write(sv[0], "hello", 5));
    ssize_t n = read(sv[1], buf, sizeof buf);
    printf(" read %zd [%.*s]", n, (int)(n > 0 ? n : 0), buf);
    shutdown(sv[0], SHUT_WR);
    printf(" after-shutdown read %zd", read(sv[1], buf, sizeof buf));
    printf(" reverse %zd", write(sv[1], "back", 4));
    n = read(sv[0], buf, sizeof buf);
    printf(" [%.*s]", (int)(n > 0 ? n : 0), buf);
    close(sv[0]);
    printf(" peer-closed %s", E(write(sv[1], "x", 1)));
    printf(" inet %s", E(socketpair(AF_INET, SOCK_STREAM, 0, sv)));
    printf(" family %s\n", E(socketpair(12345, SOCK_STREAM, 0, sv)));
    close(sv[1]);
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        static char big[200000];
        memset(big, 'z', sizeof big);
        close(sv[0]);
        ssize_t w = write(sv[1], big, sizeof big);
        _exit(w == (ssize_t)sizeof big ? 0 : 1);
    }
    close(sv[1]);
    long total = 0;
    while ((n = read(sv[0], buf, sizeof buf)) > 0) total += n;
    printf("socketpair stream: %ld bytes", total);
    describe(", writer", status_of(child));
    close(sv[0]);

    static char data[10000];
    for (int i = 0; i < (int)sizeof data; i++) data[i] = 'a' + i % 26;
    int in = open("/tmp/src", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (write(in, data, sizeof data) != (ssize_t)sizeof data) perror("write");
    int out = open("/tmp/dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t off = 100;
    ssize_t sent = sendfile(out, in, &off, 5000);
    struct stat st;
    fstat(out, &st);
    pread(out, buf, 4, 0);
    printf("sendfile: %zd offset %ld size %ld starts [%.4s] in-offset %ld", sent, (long)off,
           (long)st.st_size, buf, (long)lseek(in, 0, SEEK_CUR));
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    lseek(in, 0, SEEK_SET);
    sent = sendfile(sv[0], in, NULL, 26);
    n = read(sv[1], buf, sizeof buf);
    printf(" to-socket %zd [%.*s] moved %ld\n", sent, (int)(n > 0 ? n : 0), buf,
           (long)lseek(in, 0, SEEK_CUR));
    close(in);
    close(out);
    close(sv[0]);
    close(sv[1]);

    struct sysinfo si;
    printf("sysinfo: %s", E(sysinfo(&si)));
    printf(" ram %d free<=ram %d unit %u procs %d\n", si.totalram > 0, si.freeram <= si.totalram,
           si.mem_unit, si.procs >= 1);
    struct utsname u;
    uname(&u);
    printf("uname: machine %s sysname-set %d\n", u.machine, u.sysname[0] != 0);
    printf("ids: %d %d %d %d groups %d\n", (int)getuid(), (int)geteuid(), (int)getgid(),
           (int)getegid(), getgroups(0, NULL));

    mkdir("/tmp/m", 0755);
    put("/tmp/m/lower", "under the mount");
    printf("mount: tmpfs %s", E(mount("none", "/tmp/m", "tmpfs", 0, NULL)));
    printf(" hides %s", E(stat("/tmp/m/lower", &st)));
    put("/tmp/m/inside", "x");
    struct statfs fs;
    statfs("/tmp/m", &fs);
    printf(" type %#lx", (long)fs.f_type);
    static char text[8192];
    slurp("/proc/mounts", text, sizeof text);
    printf(" listed %d", strstr(text, " /tmp/m tmpfs ") != NULL);
    printf(" umount %s", E(umount("/tmp/m")));
    printf(" file-gone %s back %s", E(stat("/tmp/m/inside", &st)), E(stat("/tmp/m/lower", &st)));
    printf(" unknown-fs %s", E(mount("none", "/tmp/m", "nosuchfs", 0, NULL)));
    printf(" not-a-dir %s", E(mount("none", "/tmp/dst", "tmpfs", 0, NULL)));
    /* Two mounts stacked, each with a file, left mounted: the lower one
     * still holds its pages (pageos's leak check at the end counts them). */
    mount("none", "/tmp/m", "tmpfs", 0, NULL);
    put("/tmp/m/first", "first");
    mount("none", "/tmp/m", "tmpfs", 0, NULL);
    put("/tmp/m/second", "second");
    printf(" stacked: first %s second %s\n", E(stat("/tmp/m/first", &st)),
           E(stat("/tmp/m/second", &st)));
}

int main(int argc, char **argv) {
    if (argc == 3 && strncmp(argv[1], "stack", 5) == 0) {
        if (strcmp(argv[1], "stack-lowered") == 0) {
            struct rlimit rl = {128 << 10, RLIM_INFINITY};
            setrlimit(RLIMIT_STACK, &rl);
        }
        return deep(atoi(argv[2])) == 0 ? 1 : 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/proc", 0555);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    int mounted = mount("proc", "/proc", "proc", 0, NULL) == 0 &&
                  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) == 0 &&
                  mount("tmpfs", "/tmp", "tmpfs", 0, NULL) == 0;
    printf("BEGIN sysapi\n");
    printf("mounted proc, devtmpfs, tmpfs: %d\n", mounted);
    names();
    attributes();
    locks();
    limits();
    stack_limit(argv[0]);
    usage();
    devices();
    procfs(argc, argv);
    sockets_and_more();
    printf("END sysapi\n");
    fflush(stdout);
    if (getpid() == 1) reboot(RB_POWER_OFF);
    return 0;
}
