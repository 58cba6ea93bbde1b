#define _GNU_SOURCE
#include "CEngageSysSocket.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_address(struct sockaddr_un *address, const char *path) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length >= sizeof address->sun_path) { errno = ENAMETOOLONG; return -1; }
    /* The builtin, not the fortified memcpy: the length is checked above, and __memcpy_chk would be one
       more symbol for the module to bind at every dlopen. */
    __builtin_memcpy(address->sun_path, path, length);
    return 0;
}

int e2f_unix_connect(const char *path, uid_t *peer_uid) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    /* Non-blocking for the connect only: a Unix socket whose queue is full (a hung service) makes a blocking
       connect wait for ever; this one fails at once with EAGAIN, and the login is not kept waiting. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    struct ucred credentials;
    socklen_t size = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    *peer_uid = credentials.uid;
    return fd;
}

int e2f_wait_readable(int fd, int timeout_ms) {
    struct pollfd entry = { .fd = fd, .events = POLLIN };
    for (;;) {
        int ready = poll(&entry, 1, timeout_ms);
        if (ready < 0 && errno == EINTR) continue;
        return ready < 0 ? -1 : ready;
    }
}

int e2f_unix_listen(const char *path, mode_t mode) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct stat info;
    if (lstat(path, &info) == 0 && S_ISSOCK(info.st_mode)) unlink(path);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || chmod(path, mode) != 0 || listen(fd, 64) != 0) {
        int saved = errno; close(fd); errno = saved; return -1;
    }
    return fd;
}

int e2f_peer_credentials(int fd, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t size = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) return -1;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int e2f_wait_either(int first, int second, int timeout_ms) {
    struct pollfd entries[2] = { { .fd = first, .events = POLLIN }, { .fd = second, .events = POLLIN } };
    int ready = poll(entries, second >= 0 ? 2 : 1, timeout_ms);
    if (ready <= 0) return -1;
    return (entries[0].revents & POLLIN) ? 0 : 1;
}

pid_t e2f_fork(void) { return fork(); }
