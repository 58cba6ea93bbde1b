#if canImport(Glibc)
import Glibc
#endif

/// Where one user's device file is, and with whose rights it is read and written.
///
/// In the user's home it is opened with the user's file-system identity and must be owned by the user.
/// Elsewhere (admin-managed storage under a root-owned directory) it is opened as root and may be
/// owned by root or the user; a rewrite keeps its owner.
public struct DeviceFileLocation: Sendable {
    public var account: Account
    public var path: String
    public var isInHome: Bool

    public init(account: Account, config: Config) {
        self.account = account
        path = config.secretFilePath(user: account.name, home: account.home)
        isInHome = config.secretFileIsInHome(user: account.name, home: account.home)
    }

    var owners: [uid_t] { isInHome ? [account.uid] : Array(Set([account.uid, 0])) }

    /// The user's devices; nil if the file does not exist.
    public func load() throws -> DeviceFile? {
        if isInHome {
            return try withFileSystemIdentity(of: account) { try DeviceFile.load(path: path, owners: owners) }
        }
        return try DeviceFile.load(path: path, owners: owners)
    }

    /// Replaces the file atomically (mode 600).
    public func save(_ file: DeviceFile) throws {
        let contents = file.serialized()
        if isInHome {
            // Created under the user's fsuid and fsgid, the new file is the user's without a chown.
            try withFileSystemIdentity(of: account) { try writeFileAtomically(path, contents: contents) }
            return
        }
        var info = stat()
        let owner = stat(path, &info) == 0 ? (uid: info.st_uid, gid: info.st_gid) : (uid: account.uid, gid: account.gid)
        try writeFileAtomically(path, contents: contents, owner: geteuid() == 0 ? owner : nil)
    }
}
