/* The PAM application of the rootless libpam tier (Tests/PAMTier/run): starts libpam on a service file in
 * a directory of its own with pam_start_confdir(3) (Linux-PAM >= 1.4), so that neither /etc/pam.d nor
 * root is needed, and reports what the stack returned and what the person would have seen.
 *
 *   driver [--silent] [--setcred-only] CONFDIR SERVICE USER [ANSWER...]
 *
 * Runs pam_authenticate(3) and then pam_setcred(3) with PAM_ESTABLISH_CRED (with --setcred-only, only
 * pam_setcred), answering the prompts with the ANSWERs in order; when none is left the conversation
 * fails, as a closed ssh session does. --silent passes PAM_SILENT. Prints one line a message and a line
 * a call, e.g.
 *
 *   prompt-off Verification code:
 *   info Two-factor authentication becomes mandatory on ...
 *   error Wrong verification code.
 *   authenticate PAM_AUTH_ERR
 *   setcred PAM_SUCCESS
 *
 * and exits 0; 2 when libpam could not be started.
 */
#define _POSIX_C_SOURCE 200809L  /* strdup */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char **answers;
static int answers_left;

static int conversation(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    (void)data;
    if (count <= 0 || count > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
    struct pam_response *out = calloc((size_t)count, sizeof *out);
    if (!out) return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        const char *text = messages[i]->msg ? messages[i]->msg : "";
        switch (messages[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
        case PAM_PROMPT_ECHO_ON:
            printf("%s %s\n", messages[i]->msg_style == PAM_PROMPT_ECHO_OFF ? "prompt-off" : "prompt-on", text);
            if (answers_left == 0) {
                for (int j = 0; j < i; j++) free(out[j].resp);
                free(out);
                return PAM_CONV_ERR;
            }
            out[i].resp = strdup(*answers++);
            answers_left--;
            break;
        case PAM_TEXT_INFO: printf("info %s\n", text); break;
        case PAM_ERROR_MSG: printf("error %s\n", text); break;
        default: printf("message-%d %s\n", messages[i]->msg_style, text); break;
        }
    }
    *responses = out;
    return PAM_SUCCESS;
}

static const char *name(int status) {
    switch (status) {
#define NAME(code) case code: return #code;
    NAME(PAM_SUCCESS) NAME(PAM_OPEN_ERR) NAME(PAM_SYMBOL_ERR) NAME(PAM_SERVICE_ERR) NAME(PAM_SYSTEM_ERR)
    NAME(PAM_BUF_ERR) NAME(PAM_PERM_DENIED) NAME(PAM_AUTH_ERR) NAME(PAM_CRED_INSUFFICIENT)
    NAME(PAM_AUTHINFO_UNAVAIL) NAME(PAM_USER_UNKNOWN) NAME(PAM_MAXTRIES) NAME(PAM_NEW_AUTHTOK_REQD)
    NAME(PAM_ACCT_EXPIRED) NAME(PAM_SESSION_ERR) NAME(PAM_CRED_UNAVAIL) NAME(PAM_CRED_EXPIRED) NAME(PAM_CRED_ERR)
    NAME(PAM_NO_MODULE_DATA) NAME(PAM_CONV_ERR) NAME(PAM_AUTHTOK_ERR) NAME(PAM_IGNORE) NAME(PAM_ABORT)
    NAME(PAM_MODULE_UNKNOWN) NAME(PAM_BAD_ITEM) NAME(PAM_CONV_AGAIN) NAME(PAM_INCOMPLETE)
#undef NAME
    default: return "PAM_UNKNOWN_CODE";
    }
}

int main(int argc, char **argv) {
    int flags = 0, setcred_only = 0, index = 1;
    for (; index < argc && strncmp(argv[index], "--", 2) == 0; index++) {
        if (strcmp(argv[index], "--silent") == 0) flags |= PAM_SILENT;
        else if (strcmp(argv[index], "--setcred-only") == 0) setcred_only = 1;
        else { fprintf(stderr, "driver: unknown option %s\n", argv[index]); return 2; }
    }
    if (argc - index < 3) {
        fprintf(stderr, "usage: driver [--silent] [--setcred-only] CONFDIR SERVICE USER [ANSWER...]\n");
        return 2;
    }
    const char *confdir = argv[index], *service = argv[index + 1], *user = argv[index + 2];
    answers = argv + index + 3;
    answers_left = argc - index - 3;

    struct pam_conv conv = { conversation, NULL };
    pam_handle_t *handle = NULL;
    int status = pam_start_confdir(service, user, &conv, confdir, &handle);
    if (status != PAM_SUCCESS) {
        fprintf(stderr, "driver: pam_start_confdir: %s\n", name(status));
        return 2;
    }
    if (!setcred_only) {
        status = pam_authenticate(handle, flags);
        printf("authenticate %s\n", name(status));
    }
    int cred = pam_setcred(handle, flags | PAM_ESTABLISH_CRED);
    printf("setcred %s\n", name(cred));
    fflush(stdout);
    pam_end(handle, status);
    return 0;
}
