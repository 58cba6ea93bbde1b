import CEngageSys

/// A user from the host's user database (getpwnam_r(3): /etc/passwd, LDAP, sssd…).
public struct Account: Equatable, Sendable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    public var home: String

    public init(name: String, uid: uid_t, gid: gid_t, home: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
    }

    /// The account of a user-database entry; nil when it has no name or no home.
    public init?(passwd entry: passwd) {
        guard let name = entry.pw_name, let home = entry.pw_dir else { return nil }
        self.init(name: String(cString: name), uid: entry.pw_uid, gid: entry.pw_gid, home: String(cString: home))
    }

    /// The account, or nil if the name is unknown (or the lookup failed).
    public static func lookup(_ name: String) -> Account? {
        // First into 1 KiB on the stack (glibc's own suggestion, sysconf(_SC_GETPW_R_SIZE_MAX), and enough for
        // any /etc/passwd line of sane length), then, for a longer entry (ERANGE), growing buffers on the heap.
        var (status, account) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { lookup(name, in: $0) }
        var size = 4096
        while status == ERANGE && size <= 1 << 20 {
            (status, account) = withUnsafeTemporaryAllocation(of: CChar.self, capacity: size) { lookup(name, in: $0) }
            size *= 4
        }
        return account
    }

    /// getpwnam_r(3) into `buffer`: its status, and the account when there is one.
    private static func lookup(_ name: String, in buffer: UnsafeMutableBufferPointer<CChar>) -> (Int32, Account?) {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        let status = name.withCString { getpwnam_r($0, &entry, buffer.baseAddress!, buffer.count, &result) }
        guard status == 0, result != nil else { return (status, nil) }
        // The name as the database spells it (sssd may match case-insensitively): deadlines and %u use it.
        return (status, Account(passwd: entry))
    }
}

/// Runs `body` with the file-system identity (setfsuid(2)/setfsgid(2)) of `account`, so that files in
/// its home are opened with the user's rights, as NFS with root squashing and a careful admin expect.
/// Does nothing unless this process runs as root for another user.
public func withFileSystemIdentity<Result>(of account: Account, _ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
    guard effectiveUserID() == 0, account.uid != 0 else { return try body() }
    return try withFileSystemIDs(uid: account.uid, gid: account.gid, body)
}

/// Unix time now (CLOCK_REALTIME).
public func currentUnixTime() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec)
}

/// CLOCK_REALTIME in nanoseconds since the epoch, the clock file timestamps are taken from.
func currentTimeNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
}
