/* The init of boot/tests/programs.rs: runs the commands of /etc/programs
 * one after the other, the same way on pageos and on Linux, so that one
 * boot of each kernel runs every real program (busybox applets, the
 * system-API checks, Lua, SQLite) and the test compares their output.
 *
 * It mounts proc, devtmpfs and tmpfs (an init on Linux must), then for
 * each line: prints "$ LINE", forks, and in the child redirects "< FILE"
 * and "> FILE" words and execve()s the rest (words split at spaces;
 * 'single quotes' keep spaces). A nonzero status is printed as
 * "[exit N]" or "[signal N]". A line "?clone" skips the following lines up
 * to "?end" when the kernel has no clone(2) (glibc's fork needs it).
 * Then it powers off. Built with musl-gcc -static. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORDS 64

/* Split `line` in place into words; returns how many. */
static int split(char *line, char **words) {
    int n = 0;
    char *p = line;
    while (*p && n < MAX_WORDS - 1) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *out = p;
        words[n++] = out;
        while (*p && *p != ' ') {
            if (*p == '\'') {
                p++;
                while (*p && *p != '\'') *out++ = *p++;
                if (*p) p++;
            } else {
                *out++ = *p++;
            }
        }
        if (*p) p++;
        *out = 0;
    }
    words[n] = NULL;
    return n;
}

static void run(char *line) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    printf("$ %s\n", copy);
    fflush(stdout);
    char *words[MAX_WORDS];
    int n = split(line, words);
    if (n == 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[MAX_WORDS];
        int argc = 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(words[i], "<") == 0 && i + 1 < n) {
                int fd = open(words[++i], O_RDONLY);
                if (fd < 0 || dup2(fd, 0) < 0) _exit(126);
                close(fd);
            } else if (strcmp(words[i], ">") == 0 && i + 1 < n) {
                int fd = open(words[++i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
                close(fd);
            } else {
                argv[argc++] = words[i];
            }
        }
        argv[argc] = NULL;
        char *env[] = {"PATH=/bin", "HOME=/", "LC_ALL=C", NULL};
        execve(argv[0], argv, env);
        printf("execve %s: errno %d\n", argv[0], errno);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        printf("[fork or wait failed]\n");
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) printf("[exit %d]\n", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) printf("[signal %d]\n", WTERMSIG(status));
    fflush(stdout);
}

/* Whether clone(2) exists: a fork-like clone whose child exits at once. */
static int have_clone(void) {
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) return 0;
    waitpid(pid, NULL, 0);
    return 1;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    mkdir("/proc", 0555);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
    chmod("/tmp", 0755);
    FILE *list = fopen("/etc/programs", "re");
    if (!list) {
        printf("progrun: no /etc/programs\n");
    } else {
        char line[4096];
        int skipping = 0;
        while (fgets(line, sizeof line, list)) {
            line[strcspn(line, "\n")] = 0;
            if (line[0] == 0 || line[0] == '#') continue;
            if (strcmp(line, "?clone") == 0) {
                skipping = !have_clone();
                if (skipping) printf("progrun: no clone(2): skipping to ?end\n");
                continue;
            }
            if (strcmp(line, "?end") == 0) {
                skipping = 0;
                continue;
            }
            if (!skipping) run(line);
        }
        fclose(list);
    }
    printf("progrun: done\n");
    fflush(stdout);
    reboot(RB_POWER_OFF);
    return 0;
}
