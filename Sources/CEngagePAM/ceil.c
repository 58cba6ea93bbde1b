/* ceil(3) is the only function of libm the module needs: the Embedded Swift standard library rounds
   hash-table capacities up with it. Defined here, the module does not make sshd map libm (about
   6,000 instructions of loading per connection for one function). The version script keeps it local
   to the module, so nothing else in the process calls it. Exact for every double; tested against
   libm by test_module_ceil_matches_libm in Tests/Integration/test_pam_module.py. */
double ceil(double x) {
    const double two52 = 4503599627370496.0; /* from 2^52 on, every double is an integer */
    if (x == 0.0 || !(x < two52 && x > -two52)) return x; /* ±0, integers, infinities, NaN */
    double truncated = (double)(long long)x;             /* exact below 2^52, rounded toward zero */
    if (truncated < x) truncated += 1.0;
    return truncated == 0.0 && x < 0.0 ? -0.0 : truncated; /* ceil(-0.5) is -0 */
}
