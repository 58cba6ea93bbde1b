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
