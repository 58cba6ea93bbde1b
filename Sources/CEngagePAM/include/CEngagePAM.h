#ifndef CENGAGEPAM_H
#define CENGAGEPAM_H
#include <security/pam_modules.h>
#include <security/pam_ext.h>

/* pam_prompt(3) for one already-formatted text (pam_prompt is variadic, which Swift cannot call). */
int e2f_pam_prompt(pam_handle_t *pamh, int style, char **response, const char *text);
/* syslog(3) to authpriv as pam_syslog(3) words it, "pam_engage2fa(SERVICE:auth): MESSAGE"; the
   message is an argument, never a format. */
void e2f_pam_log(int priority, const char *service, const char *message);

#endif
