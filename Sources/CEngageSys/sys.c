#define _GNU_SOURCE
#include "CEngageSys.h"
#include <sys/fsuid.h>
#include <sys/random.h>

int e2f_setfsuid(uid_t uid) {
    setfsuid(uid);
    return setfsuid((uid_t)-1) == uid ? 0 : -1;
}

int e2f_setfsgid(gid_t gid) {
    setfsgid(gid);
    return setfsgid((gid_t)-1) == gid ? 0 : -1;
}

uid_t e2f_getfsuid(void) { return (uid_t)setfsuid((uid_t)-1); }
gid_t e2f_getfsgid(void) { return (gid_t)setfsgid((gid_t)-1); }

ssize_t e2f_getrandom(void *buffer, size_t length) {
    return getrandom(buffer, length, 0);
}

#include <syslog.h>

void e2f_syslog(int priority, const char *message) {
    syslog(priority, "%s", message);
}
