import Glibc
import Engage2FALogin

// For the commands (who is running me?); the module looks users up by the name PAM gives it.

extension Account {
    /// The account of a uid (getpwuid_r(3)), or nil.
    public static func lookup(uid: uid_t) -> Account? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return Account(passwd: entry)
    }
}
