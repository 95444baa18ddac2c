/* The first process of Linux when scripts/linux-run.py attaches disks
 * (--swap, --disk): Debian builds virtio and virtio-blk as modules, and
 * nothing loads them in an initramfs without udev. This loads
 * /modules/0.ko, /modules/1.ko, ... in that order (linux-run.py puts them
 * there, dependencies first), mounts devtmpfs on /dev so that /dev/vda
 * exists and procfs on /proc (/proc/swaps, /proc/meminfo), waits for the
 * first disk, and then runs the test program,
 * /sbin/init, with the same arguments. Built with musl-gcc -static. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[64];
    struct stat st;
    (void)argc;
    for (int i = 0;; i++) {
        snprintf(path, sizeof path, "/modules/%d.ko", i);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
            perror(path);
        close(fd);
    }
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
        perror("mount devtmpfs on /dev");
    if (mount("proc", "/proc", "proc", 0, NULL) != 0)
        perror("mount proc on /proc");
    /* Probing runs as the modules load; give the node a second to appear. */
    for (int i = 0; i < 100 && stat("/dev/vda", &st) != 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    argv[0] = "/sbin/init";
    execv("/sbin/init", argv);
    perror("execv /sbin/init");
    return 127;
}
