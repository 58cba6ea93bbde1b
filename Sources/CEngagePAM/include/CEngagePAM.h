#ifndef CENGAGEPAM_H
#define CENGAGEPAM_H
#include <security/pam_modules.h>
#include <security/pam_ext.h>

/* pam_syslog(3) and pam_prompt(3) are variadic, which Swift cannot call; these pass one
   already-formatted string through "%s", so no text of ours is ever read as a format. */
void e2f_pam_syslog(pam_handle_t *pamh, int priority, const char *message);
int e2f_pam_prompt(pam_handle_t *pamh, int style, char **response, const char *text);

#endif
