// engage2fad serves each connection in a child process of its own. A child that connected to the
// directory itself would pay, at every login, a TCP connection, the TLS handshake and the bind before
// its first search. Instead the main process keeps one connection opened and bound ahead of time, and
// the next child it forks inherits it: that child's first LDAP message is its search. The main process
// then forgets its copy without a word on the wire (the child's TLS session and bind go on), and opens
// the next spare. A spare is used only by a child whose settings are those it was made with, only while
// the server has not closed it (nothing may be waiting on an idle LDAP connection), and never older than
// `maxAge`; anything else is a fresh connection, exactly as without spares.

import CEngageSys
import CLDAP
import Engage2FALogin
import Glibc

extension Directory {
    /// A spare older than this is replaced: a middlebox may have dropped an idle connection silently.
    static let spareMaxAgeMilliseconds: Int64 = 30_000
    /// How long the main process may spend opening a spare: it is not serving connections meanwhile.
    static let spareBudgetMilliseconds: Int64 = 500
    /// After a spare could not be made, how long the main process waits before trying again, so that a
    /// directory that is down costs it one short wait now and then, not one per login.
    static let spareBackoffMilliseconds: Int64 = 10_000
    /// How long after handing a spare to a child the next one is opened: not while that child's login
    /// is being served, whose searches it would compete with for the CPU and the directory.
    static let spareDelayMilliseconds: Int64 = 100

    private struct Spare {
        var directory: Directory
        var settings: FleetSettings
        var madeAt: Int64
    }

    nonisolated(unsafe) private static var spare: Spare? = nil
    nonisolated(unsafe) private static var spareFailedAt: Int64? = nil
    nonisolated(unsafe) private static var spareHandedAt: Int64? = nil

    /// How long the main process may wait for a connection before it should open the next spare.
    public static func millisecondsUntilSpare(atMost: Int32) -> Int32 {
        guard spare == nil, let handed = spareHandedAt else { return atMost }
        return Int32(clamping: max(0, min(Int64(atMost), handed + spareDelayMilliseconds - monotonicNow())))
    }

    /// The main process: opens a spare if there is none (or it is too old), unless one failed lately.
    public static func keepSpare(settings: FleetSettings) {
        let now = monotonicNow()
        if let current = spare {
            guard now - current.madeAt >= spareMaxAgeMilliseconds || current.settings != settings || !isQuiet(current.directory) else { return }
            spare = nil  // unbound properly: no child has it
        }
        if let failed = spareFailedAt, now - failed < spareBackoffMilliseconds { return }
        if let handed = spareHandedAt, now - handed < spareDelayMilliseconds { return }
        switch connect(settings: settings, budgetMilliseconds: min(spareBudgetMilliseconds, Int64(settings.timeoutSeconds) * 1000)) {
        case .success(let opened):
            spare = Spare(directory: opened, settings: settings, madeAt: monotonicNow())
            spareFailedAt = nil
        case .failure:
            spareFailedAt = monotonicNow()
        }
    }

    /// The main process, right after forking a child: the spare is the child's now. The main process's
    /// copy of the socket becomes /dev/null before it is let go, so that its unbind (and TLS close)
    /// reach nobody and the child's session is untouched.
    public static func handSpareToChild() {
        guard let given = spare else { return }
        spare = nil
        spareHandedAt = monotonicNow()
        var descriptor: Int32 = -1
        if ldap_get_option(given.directory.handle, LDAP_OPT_DESC, &descriptor) == LDAP_OPT_SUCCESS, descriptor >= 0 {
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            if null >= 0 {
                dup2(null, descriptor)
                close(null)
            }
        }
        // Deinit unbinds, into /dev/null.
    }

    /// A child: the spare it inherited, if it is still good for these settings, retimed for this budget.
    static func takeSpare(settings: FleetSettings, budgetMilliseconds: Int64) -> Directory? {
        guard let inherited = spare else { return nil }
        spare = nil
        guard inherited.settings == settings, monotonicNow() - inherited.madeAt < spareMaxAgeMilliseconds else { return nil }
        guard isQuiet(inherited.directory) else { return nil }
        let directory = inherited.directory
        directory.timeoutMilliseconds = budgetMilliseconds
        var timeout = timeval(tv_sec: Int(budgetMilliseconds / 1000), tv_usec: Int(budgetMilliseconds % 1000) * 1000)
        ldap_set_option(directory.handle, LDAP_OPT_TIMEOUT, &timeout)
        return directory
    }

    /// Whether nothing is waiting on an idle connection: readable means the server said something unasked
    /// (a notice of disconnection) or hung up.
    private static func isQuiet(_ directory: Directory) -> Bool {
        var descriptor: Int32 = -1
        return ldap_get_option(directory.handle, LDAP_OPT_DESC, &descriptor) == LDAP_OPT_SUCCESS && descriptor >= 0
            && e2f_wait_readable(descriptor, 0) == 0
    }
}
