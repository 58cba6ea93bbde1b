#ifndef CENGAGESYS_SOCKET_H
#define CENGAGESYS_SOCKET_H
#include <sys/types.h>

/* Fleet mode's Unix sockets (engage2fad, and the module and engage2fa-enroll as its clients). */

/* Connects to the stream socket at path without waiting (a full queue is EAGAIN); the server's uid goes to *peer_uid (SO_PEERCRED). -1 with errno. */
int e2f_unix_connect(const char *path, uid_t *peer_uid);
/* Waits up to timeout_ms for fd to be readable (events POLLIN): 1 readable, 0 timed out, -1 error. */
int e2f_wait_readable(int fd, int timeout_ms);
/* A listening stream socket at path (a stale socket file is replaced), chmod'ed to mode. -1 with errno. */
int e2f_unix_listen(const char *path, mode_t mode);
/* The connected peer's uid and gid (SO_PEERCRED): 0, or -1 with errno. */
int e2f_peer_credentials(int fd, uid_t *uid, gid_t *gid);
/* Waits up to timeout_ms for one of two listening sockets: the readable one's index (0 or 1), -1 on timeout or error. */
int e2f_wait_either(int first, int second, int timeout_ms);
/* fork(2), which Swift's Glibc overlay marks unavailable. */
pid_t e2f_fork(void);
#endif
