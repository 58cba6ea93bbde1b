#ifndef CENGAGESYS_H
#define CENGAGESYS_H
#include <sys/types.h>
#include <stddef.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <pwd.h>
#include <grp.h>
#include <time.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <syslog.h>
#include <stdio.h>

/* setfsuid(2)/setfsgid(2): 0 if the new id took effect; the id before goes to *previous. */
int e2f_setfsuid(uid_t uid, uid_t *previous);
int e2f_setfsgid(gid_t gid, gid_t *previous);
/* Back to an id returned in *previous. */
void e2f_restorefsuid(uid_t uid);
void e2f_restorefsgid(gid_t gid);
ssize_t e2f_getrandom(void *buffer, size_t length);

#include <sys/resource.h>
#include <signal.h>
/* What e2f_lift_file_size_limit changed, for e2f_restore_file_size_limit. */
struct e2f_file_size_guard {
    struct rlimit limit;
    int lifted;
    sigset_t mask;
};
/* The caller's RLIMIT_FSIZE (setrlimit(2)) is inherited by a setuid PAM application (su, sudo): lifted to
   RLIM_INFINITY (root may raise the hard limit), and SIGXFSZ blocked for this thread (pthread_sigmask(3)),
   so that a limit set just below the size of a lockout record cannot keep the lockout from being written. */
/* Returns the soft limit in force afterwards (RLIM_INFINITY when lifted or never set). */
rlim_t e2f_lift_file_size_limit(struct e2f_file_size_guard *guard);
void e2f_restore_file_size_limit(const struct e2f_file_size_guard *guard);
void e2f_syslog(int priority, const char *message);

/* open(2) is variadic, and errno a macro: Embedded Swift (which has no Glibc overlay) sees neither.
   Paths are opened and examined with the *at(2) calls only (openat, fstatat): every libc function the
   module calls is one more symbol bound in every process that loads it (BIND_NOW), ~700 instructions
   each (bench/results.md), and glibc's open, stat, lstat and fstat are these same system calls. */
static inline int e2f_open(const char *path, int flags, mode_t mode) { return openat(AT_FDCWD, path, flags, mode); }
static inline int e2f_errno(void) { return errno; }
/* openat(2), variadic too: the system time zone is resolved one directory at a time. */
static inline int e2f_openat(int directory, const char *path, int flags) { return openat(directory, path, flags); }
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000 /* <fcntl.h> names it only under _GNU_SOURCE; the value is Linux's on every architecture. */
#endif
/* stat(2) or, not following a final symbolic link, lstat(2): fstatat(2) from the working directory. */
static inline int e2f_stat(const char *path, struct stat *info, int follow) {
    return fstatat(AT_FDCWD, path, info, follow ? 0 : AT_SYMLINK_NOFOLLOW);
}
/* fstat(2): fstatat(2) of the descriptor itself (AT_EMPTY_PATH), as glibc's fstat does. */
static inline int e2f_fstat(int fd, struct stat *info) { return fstatat(fd, "", info, AT_EMPTY_PATH); }
#include <poll.h>
/* Sleeps `milliseconds` (poll(2) with no descriptors: the call the fleet client binds anyway, not usleep(3)). */
static inline void e2f_sleep_milliseconds(int milliseconds) { (void)poll(NULL, 0, milliseconds); }
#include "CEngageSysSocket.h"
#endif
