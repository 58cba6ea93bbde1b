#include "CEngagePAM.h"

void e2f_pam_syslog(pam_handle_t *pamh, int priority, const char *message) {
    pam_syslog(pamh, priority, "%s", message);
}

int e2f_pam_prompt(pam_handle_t *pamh, int style, char **response, const char *text) {
    return pam_prompt(pamh, style, response, "%s", text);
}

/* The Swift runtime's CommandLine support finds argv at load time by scanning /proc/self/maps with
   sscanf (~160,000 instructions in every process that loads the module). A PAM module has no use for
   its host's argv, so these definitions stand in for the runtime's: the linker then never pulls
   CommandLine.cpp.o from libswiftCore.a, and loading the module costs nothing for it. */
char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
    static char *empty[] = { 0 };
    *outArgLen = 0;
    return empty;
}

void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    (void)argv;
    (void)argc;
}
