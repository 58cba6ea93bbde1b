#include "CEngagePAM.h"
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* The line pam_syslog(3) would log ("pam_engage2fa(SERVICE:auth): MESSAGE"), formatted once instead of three
   times: the caller writes it whole, the service name (the application's: any name reaches /etc/pam.d/other)
   escaped like the message. */
void e2f_pam_log(int priority, const char *line) {
    syslog(LOG_AUTHPRIV | priority, "%s", line);
}

/* explicit_bzero(3)'s effect through memset(3), which the module binds anyway (fortified, explicit_bzero is
   one more symbol to bind at every dlopen): the empty asm that may read the memory keeps the store. */
static void wipe(char *bytes, size_t length) {
    memset(bytes, 0, length);
    __asm__ __volatile__("" : : "r"(bytes) : "memory");
}

/* What pam_prompt(3) does, without formatting the text into a copy first: one message through the
   application's conversation function. A reply nobody asked for (an info or error message) is wiped
   and freed. */
int e2f_pam_prompt(pam_handle_t *pamh, int style, char **response, const char *text) {
    const struct pam_conv *conv = NULL;
    if (response) *response = NULL;
    int status = pam_get_item(pamh, PAM_CONV, (const void **)&conv);
    if (status != PAM_SUCCESS) return status;
    if (conv == NULL || conv->conv == NULL) return PAM_CONV_ERR;

    struct pam_message message = { .msg_style = style, .msg = text };
    const struct pam_message *messages[1] = { &message };
    struct pam_response *replies = NULL;
    status = conv->conv(1, messages, &replies, conv->appdata_ptr);
    char *reply = replies ? replies[0].resp : NULL;
    free(replies);
    if (status == PAM_SUCCESS && response) {
        *response = reply;
    } else if (reply) {
        wipe(reply, strlen(reply));
        free(reply);
    }
    return status;
}

#define E2F_PASSED_KEY "pam_engage2fa:passed"

struct e2f_passed {
    long long at;
    char user[];
};

static void e2f_passed_cleanup(pam_handle_t *pamh, void *data, int status) {
    (void)pamh;
    (void)status;
    free(data);
}

int e2f_pam_mark_passed(pam_handle_t *pamh, const char *user, long long now) {
    size_t length = strlen(user);
    /* posix_memalign(3), which Swift's allocations bind anyway, not malloc(3): one symbol fewer at dlopen. */
    void *memory = NULL;
    if (posix_memalign(&memory, sizeof(long long), sizeof(struct e2f_passed) + length + 1) != 0) return PAM_BUF_ERR;
    struct e2f_passed *mark = memory;
    mark->at = now;
    memcpy(mark->user, user, length + 1);
    int status = pam_set_data(pamh, E2F_PASSED_KEY, mark, e2f_passed_cleanup);
    if (status != PAM_SUCCESS) free(mark);
    return status;
}

int e2f_pam_has_passed(pam_handle_t *pamh, const char *user, long long now, long long max_age) {
    const void *data = NULL;
    if (pam_get_data(pamh, E2F_PASSED_KEY, &data) != PAM_SUCCESS || data == NULL) return 0;
    const struct e2f_passed *mark = data;
    /* Compared here, not by strcmp(3): one libc symbol fewer to bind at every dlopen. */
    const char *a = mark->user, *b = user;
    while (*a && *a == *b) { a++; b++; }
    return *a == *b && now >= mark->at && now - mark->at <= max_age;
}

void e2f_pam_forget_passed(pam_handle_t *pamh) {
    pam_set_data(pamh, E2F_PASSED_KEY, NULL, NULL);
}
