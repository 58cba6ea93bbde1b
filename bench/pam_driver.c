/* A PAM application for the benchmarks: runs pam_start -> pam_authenticate -> pam_end cycles in one
 * process, answering the code prompt from a list, and reports time per cycle and memory.
 *
 *   pam_driver loop SERVICE USER CODES_FILE PREPARE_DIR TARGET_FILE
 *       For each line i of CODES_FILE: copies PREPARE_DIR/i over TARGET_FILE (a fresh secret, so that
 *       reuse protection does not refuse the next cycle; not timed), then times one cycle answering
 *       code i. Prints "cycles N ok K ns_median M ns_mean A rss10_kib R rss_end_kib S dirty10_kib D dirty_end_kib E".
 *   pam_driver hold SERVICE USER CODE
 *       One authentication; then, still holding the PAM handle (as an sshd connection does), prints the
 *       process's Private_Dirty and Pss (from /proc/self/smaps_rollup) before and after, in KiB.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *answer;

static int conversation(int count, const struct pam_message **messages, struct pam_response **responses, void *data) {
    (void)data;
    struct pam_response *out = calloc((size_t)count, sizeof *out);
    if (!out) return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        if (messages[i]->msg_style == PAM_PROMPT_ECHO_OFF || messages[i]->msg_style == PAM_PROMPT_ECHO_ON)
            out[i].resp = strdup(answer);
    }
    *responses = out;
    return PAM_SUCCESS;
}

static long smaps(const char *field) {
    FILE *file = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long value = -1;
    size_t length = strlen(field);
    while (file && fgets(line, sizeof line, file)) {
        if (strncmp(line, field, length) == 0 && line[length] == ':') { value = strtol(line + length + 1, NULL, 10); break; }
    }
    if (file) fclose(file);
    return value;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cycle(const char *service, const char *user, const char *code) {
    struct pam_conv conv = { conversation, NULL };
    pam_handle_t *handle = NULL;
    answer = code;
    int status = pam_start(service, user, &conv, &handle);
    if (status == PAM_SUCCESS) status = pam_authenticate(handle, 0);
    pam_end(handle, status);
    return status;
}

static int compare(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int copy(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) return -1;
    char buffer[8192];
    size_t length = fread(buffer, 1, sizeof buffer, in);
    fclose(in);
    FILE *out = fopen(to, "wb");  /* keeps the target's owner and mode */
    if (!out) return -1;
    fwrite(buffer, 1, length, out);
    return fclose(out);
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "loop") == 0) {
        FILE *codes = fopen(argv[4], "r");
        if (!codes) { perror(argv[4]); return 2; }
        char line[64], path[4096];
        long long *times = malloc(sizeof(long long) * 100000);
        int cycles = 0, ok = 0;
        long rss10 = 0, dirty10 = 0;
        while (fgets(line, sizeof line, codes) && cycles < 100000) {
            line[strcspn(line, "\n")] = 0;
            snprintf(path, sizeof path, "%s/%d", argv[5], cycles);
            if (copy(path, argv[6]) != 0) { perror(path); return 2; }
            long long start = now_ns();
            if (cycle(argv[2], argv[3], line) == PAM_SUCCESS) ok++;
            times[cycles++] = now_ns() - start;
            if (cycles == 10) { rss10 = smaps("Rss"); dirty10 = smaps("Private_Dirty"); }
        }
        long long total = 0;
        for (int i = 0; i < cycles; i++) total += times[i];
        qsort(times, (size_t)cycles, sizeof *times, compare);
        printf("cycles %d ok %d ns_median %lld ns_mean %lld rss10_kib %ld rss_end_kib %ld dirty10_kib %ld dirty_end_kib %ld\n",
               cycles, ok, times[cycles / 2], total / (cycles ? cycles : 1), rss10, smaps("Rss"), dirty10, smaps("Private_Dirty"));
        /* Freed so that memcheck's leak report of a run is about PAM and the module only. */
        free(times);
        fclose(codes);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "hold") == 0) {
        long dirty_before = smaps("Private_Dirty"), pss_before = smaps("Pss");
        struct pam_conv conv = { conversation, NULL };
        pam_handle_t *handle = NULL;
        answer = argv[4];
        int status = pam_start(argv[2], argv[3], &conv, &handle);
        if (status == PAM_SUCCESS) status = pam_authenticate(handle, 0);
        printf("status %d dirty_before_kib %ld dirty_after_kib %ld pss_before_kib %ld pss_after_kib %ld\n",
               status, dirty_before, smaps("Private_Dirty"), pss_before, smaps("Pss"));
        pam_end(handle, status);
        return 0;
    }
    fprintf(stderr, "usage: pam_driver loop SERVICE USER CODES PREPARE_DIR TARGET | hold SERVICE USER CODE\n");
    return 2;
}
