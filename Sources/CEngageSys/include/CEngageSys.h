#ifndef CENGAGESYS_H
#define CENGAGESYS_H
#include <sys/types.h>
#include <stddef.h>

/* setfsuid(2) and setfsgid(2) return the previous id and never fail visibly; these wrappers
   confirm the switch by reading the id back and return 0 on success, -1 if it did not take. */
int e2f_setfsuid(uid_t uid);
int e2f_setfsgid(gid_t gid);
uid_t e2f_getfsuid(void);
gid_t e2f_getfsgid(void);

/* getrandom(2), flags 0: blocks until the kernel's CSPRNG is seeded. */
ssize_t e2f_getrandom(void *buffer, size_t length);

/* syslog(3) is variadic; this passes one formatted message through "%s". */
void e2f_syslog(int priority, const char *message);
#endif
