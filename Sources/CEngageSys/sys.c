#define _GNU_SOURCE
#include "CEngageSys.h"
#include <sys/fsuid.h>
#include <sys/random.h>

/* setfsuid(2) returns the previous id whether or not it succeeded: the second call, which changes
   nothing, tells whether the first took effect. */
int e2f_setfsuid(uid_t uid, uid_t *previous) {
    *previous = (uid_t)setfsuid(uid);
    return setfsuid((uid_t)-1) == uid ? 0 : -1;
}

int e2f_setfsgid(gid_t gid, gid_t *previous) {
    *previous = (gid_t)setfsgid(gid);
    return setfsgid((gid_t)-1) == gid ? 0 : -1;
}

void e2f_restorefsuid(uid_t uid) { setfsuid(uid); }
void e2f_restorefsgid(gid_t gid) { setfsgid(gid); }

ssize_t e2f_getrandom(void *buffer, size_t length) {
    return getrandom(buffer, length, 0);
}

#include <syslog.h>

void e2f_syslog(int priority, const char *message) {
    syslog(priority, "%s", message);
}

#include <pthread.h>

/* The calls below are prlimit(2) (glibc's getrlimit and setrlimit are it too) and a signal set written
   directly, not sigemptyset/sigaddset: each libc function the module names is one more symbol bound at every
   dlopen (BIND_NOW), ~700 instructions each. Linux's sigset_t is a bit array, signal N at bit N-1. */
static void e2f_block_only(sigset_t *set, int signal) {
    memset(set, 0, sizeof *set);
    unsigned long *words = (unsigned long *)set;
    words[(signal - 1) / (8 * sizeof *words)] |= 1UL << ((signal - 1) % (8 * sizeof *words));
}

rlim_t e2f_lift_file_size_limit(struct e2f_file_size_guard *guard) {
    sigset_t block;
    e2f_block_only(&block, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &block, &guard->mask);
    guard->lifted = 0;
    if (prlimit(0, RLIMIT_FSIZE, NULL, &guard->limit) != 0) return RLIM_INFINITY;
    if (guard->limit.rlim_cur == RLIM_INFINITY) return RLIM_INFINITY;
    struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
    /* Raising the hard limit needs CAP_SYS_RESOURCE (containers often lack it): then the soft one, up to the hard. */
    if (prlimit(0, RLIMIT_FSIZE, &unlimited, NULL) == 0) { guard->lifted = 1; return RLIM_INFINITY; }
    struct rlimit raised = { guard->limit.rlim_max, guard->limit.rlim_max };
    if (prlimit(0, RLIMIT_FSIZE, &raised, NULL) == 0) { guard->lifted = 1; return raised.rlim_cur; }
    return guard->limit.rlim_cur;
}

void e2f_restore_file_size_limit(const struct e2f_file_size_guard *guard) {
    if (guard->lifted) prlimit(0, RLIMIT_FSIZE, &guard->limit, NULL);
    pthread_sigmask(SIG_SETMASK, &guard->mask, NULL);
}
