/* The init of `make shell`: busybox's applets as links in /bin, then an
 * interactive `sh` in a session of its own with the console as its
 * controlling terminal (so that ^C, ^Z and `fg` work: a job-control shell
 * must not be pid 1, whose children's groups Linux and pageos count as
 * orphaned). init reaps what is handed to it and powers off when the
 * shell exits. Built with musl-gcc -static. */

#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    mkdir("/tmp", 01777);
    pid_t installer = fork();
    if (installer == 0) {
        execl("/bin/busybox", "busybox", "--install", "-s", "/bin", (char *)NULL);
        _exit(127);
    }
    waitpid(installer, NULL, 0);
    pid_t shell = fork();
    if (shell == 0) {
        setsid();
        ioctl(0, TIOCSCTTY, 0);
        char *env[] = {"HOME=/", "PATH=/bin:/sbin", "TERM=vt100", "PS1=pageos:\\w\\$ ", NULL};
        execle("/bin/sh", "sh", (char *)NULL, env);
        perror("shell_init: /bin/sh");
        _exit(127);
    }
    int status = 0;
    for (;;) {
        pid_t done = wait(&status);
        if (done == shell || done < 0) break;
    }
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
