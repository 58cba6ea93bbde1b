import CEngageSys

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
        isInHome = Config.isInside(home: account.home, path: path)
    }

    var owners: [uid_t] { isInHome || account.uid == 0 ? [account.uid] : [account.uid, 0] }

    /// The user's devices; nil if the file does not exist. A missing file in a directory that is itself
    /// missing or cannot be searched (a home on an NFS server that is away) is an error, not "no devices".
    public func load() throws(CoreError) -> DeviceFile? {
        func read() throws(CoreError) -> DeviceFile? {
            let file: DeviceFile?
            do throws(DeviceFileError) { file = try DeviceFile.load(path: path, owners: owners) } catch { throw .deviceFile(error) }
            guard let file else {
                let (directory, _) = splitPath(path)
                var info = stat()
                guard directory.withCString({ stat($0, &info) }) == 0 else {
                    throw .file(.system(path: directory, SystemError("stat (the directory of the device file)")))
                }
                return nil
            }
            return file
        }
        return isInHome ? try withFileSystemIdentity(of: account) { () throws(CoreError) in try read() } : try read()
    }
}
