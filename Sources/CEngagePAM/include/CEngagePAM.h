#ifndef CENGAGEPAM_H
#define CENGAGEPAM_H
#include <security/pam_modules.h>
#include <security/pam_ext.h>

/* pam_prompt(3) for one already-formatted text (pam_prompt is variadic, which Swift cannot call). */
int e2f_pam_prompt(pam_handle_t *pamh, int style, char **response, const char *text);
/* syslog(3) to authpriv of a line the caller wrote as pam_syslog(3) words it, "pam_engage2fa(SERVICE:auth):
   MESSAGE"; the line is an argument, never a format. */
void e2f_pam_log(int priority, const char *line);

/* The mark a successful pam_engage2fa leaves in its PAM handle (pam_set_data(3)): the user and when, so
   that a second instance in the same transaction (the pam-auth-update profile and a per-service line
   both in one stack) neither asks again nor refuses the code as used. */
int e2f_pam_mark_passed(pam_handle_t *pamh, const char *user, long long now);
/* 1 when this handle holds a mark for `user` made at most `max_age` seconds before `now`. */
int e2f_pam_has_passed(pam_handle_t *pamh, const char *user, long long now, long long max_age);
void e2f_pam_forget_passed(pam_handle_t *pamh);

#endif
