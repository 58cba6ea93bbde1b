import CEngageSys

/// Runs `body` with the caller's RLIMIT_FSIZE lifted and SIGXFSZ blocked (setrlimit(2), pthread_sigmask(3)).
/// A setuid PAM application (su, sudo) inherits the limit from the user who started it: set just below the
/// size of a lockout record, it would let a failure count be written and the lockout not. Where the limit
/// cannot be lifted (no CAP_SYS_RESOURCE) and stays under `minimum` bytes, `body` does not run: no write may
/// depend on it.
func withFileSizeLimitLifted<Result>(atLeast minimum: Int, _ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
    var saved = e2f_file_size_guard()
    let limit = e2f_lift_file_size_limit(&saved)
    defer { e2f_restore_file_size_limit(&saved) }
    if limit != rlim_t.max && limit < rlim_t(minimum) {  // rlim_t.max is RLIM_INFINITY
        throw .state(.fileSizeLimit(bytes: Int64(limit)))
    }
    return try body()
}
