import CEngageSys

// The login library is compiled twice from these same files: for the commands and the tests, and as
// Embedded Swift for the module (Sources/Engage2FALoginEmbedded is a link here). The tests only run the
// first, so both must be the same code: this is the one file allowed to ask which build this is
// (`#if hasFeature(Embedded)`), and scripts/check-login-twin (fast tier) fails if any other file of the
// login library, the management library or the module asks it, or asks `canImport(Glibc)`.
//
// Today nothing needs to ask: both builds see the C library through CEngageSys alone (Embedded Swift has
// no Glibc overlay), and the two things this library took from the overlay are defined here for both.

/// errno(3) of the calling thread: a C macro, which Swift cannot import.
@inline(__always)
var errno: Int32 { e2f_errno() }

/// open(2), which is variadic in C.
@inline(__always)
func open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { e2f_open(path, flags, mode) }
