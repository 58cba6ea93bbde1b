import Glibc
import Engage2FALogin

// What enrollment writes: new secrets, recovery codes, device names, the device file. The module only reads
// the device file (DeviceFile.parse, DeviceFileLocation.load in the login library).

/// A new TOTP secret: 160 bits, the HMAC-SHA1 block-friendly size RFC 4226 recommends.
public func newSecret() throws(SystemError) -> [UInt8] { try secureRandomBytes(20) }

extension RecoveryCodes {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    /// A new set: the codes to show once (`abcde-fghij`), and what to store.
    public static func generate(now: Int64, iterations: Int = defaultIterations) throws(SystemError) -> (codes: [String], stored: RecoveryCodes) {
        let salt = try secureRandomBytes(16)
        var codes: [String] = []
        var hashes: [[UInt8]] = []
        for _ in 0..<codeCount {
            // 5 random bits a character: a byte's low 5 bits are uniform.
            let symbols = try secureRandomBytes(codeLength).map { alphabet[Int($0 & 31)] }
            codes.append(String(decoding: symbols.prefix(5), as: UTF8.self) + "-" + String(decoding: symbols.dropFirst(5), as: UTF8.self))
            hashes.append(hash(symbols, salt: salt, iterations: iterations))
        }
        return (codes, RecoveryCodes(salt: salt, iterations: iterations, createdAt: now, hashes: hashes))
    }

    /// A set of codes another tool handed out (google-authenticator's scratch codes), each in canonical
    /// form (`normalize`), stored hashed under a fresh salt.
    public static func importing(_ codes: [[UInt8]], now: Int64, iterations: Int = defaultIterations) throws(SystemError) -> RecoveryCodes {
        let salt = try secureRandomBytes(16)
        return RecoveryCodes(salt: salt, iterations: iterations, createdAt: now, hashes: codes.map { hash($0, salt: salt, iterations: iterations) })
    }
}

extension DeviceFile {
    /// Why `name` cannot be given to a device, or nil: the login's rule (`problem(inName:)`: what a login
    /// needs to show it) and the rules of naming devices that a person tells apart, which only writing a
    /// device file applies: at most `maxNameLength` characters (grapheme clusters).
    public static func problem(inNewName name: String) -> DeviceNameError? {
        let problem = problem(inName: name)
        guard problem == nil || problem == .tooManyBytes(limit: maxNameBytes) else { return problem }
        // Counting characters means grapheme breaking: only for names whose bytes could be too many.
        if name.utf8.count > maxNameLength && name.count > maxNameLength { return .tooLong(limit: maxNameLength) }
        return problem
    }

    /// The device with this name, compared case-insensitively (names differing only in case are one name).
    public func device(named name: String) -> Device? {
        let wanted = name.lowercased()
        return devices.first { $0.name.lowercased() == wanted }
    }

    /// The rules of writing a device file that a login does not apply (it accepts a file a person edited
    /// by hand that breaks them): no two devices named alike (ignoring case), no name longer than
    /// `maxNameLength` characters. The first one broken, worded for the file at `path`; nil if none is.
    /// Enrollment refuses to change such a file; `list` and `status` point at it.
    public func namingProblem(path: String) -> String? {
        for (index, device) in devices.enumerated() {
            let shown = displayText(device.name, limit: 64)
            if let problem = Self.problem(inNewName: device.name) {
                return "\(displayText(path)): bad device name '\(shown)': \(problem); edit its name= (percent-encoded) in the file"
            }
            let wanted = device.name.lowercased()
            if let twin = devices[..<index].first(where: { $0.name.lowercased() == wanted }) {
                return "\(displayText(path)): duplicate device '\(shown)' (the same name as '\(displayText(twin.name, limit: 64))', ignoring case):"
                    + " edit one of their name= (percent-encoded) in the file"
            }
        }
        return nil
    }

    /// The name as it will be stored, or why it cannot be used.
    public func validatedNewName(_ proposed: String) throws(DeviceNameError) -> String {
        let bytes = Array(proposed.utf8).span
        let name = bytes.text(bytes.trimmingBlanks(bytes.all))
        if let problem = Self.problem(inNewName: name) { throw problem }
        if let existing = device(named: name) { throw .duplicate(existing.name) }
        guard devices.count < Self.maxDevices else { throw .tooManyDevices(limit: Self.maxDevices) }
        return name
    }

    /// Adds a device under a fresh random id.
    @discardableResult
    public mutating func addDevice(
        name proposed: String, secret: [UInt8], parameters: OTPParameters, now: Int64, verifiedStep: Int64? = nil
    ) throws(CoreError) -> Device {
        let name: String
        let id: [UInt8]
        do { name = try validatedNewName(proposed) } catch { throw .deviceName(error) }
        do { id = try secureRandomBytes(8) } catch { throw .system(error) }
        let device = Device(id: hexString(id), name: name, secret: secret, parameters: parameters, addedAt: now, verifiedStep: verifiedStep)
        devices.append(device)
        return device
    }

    /// Removes the device with this name (compared case-insensitively); false if there is none.
    public mutating func removeDevice(named name: String) -> Bool {
        guard let found = device(named: name) else { return false }
        devices.removeAll { $0.id == found.id }
        return true
    }

    public func serialized() -> [UInt8] {
        var text = "# engage2fa devices: written by engage2fa-enroll, read by pam_engage2fa. Keep it private (mode 600).\n"
        text += "\(Self.header)\n"
        for device in devices {
            text += "device id=\(device.id) added=\(device.addedAt) algorithm=\(device.parameters.algorithm.rawValue)"
                + " digits=\(device.parameters.digits) period=\(device.parameters.period)"
                + (device.verifiedStep.map { " verified-step=\($0)" } ?? "")
                + " secret=\(Base32.encode(device.secret)) name=\(percentEncode(device.name))\n"
        }
        if let recovery {
            text += "recovery-codes salt=\(hexString(recovery.salt)) iterations=\(recovery.iterations) created=\(recovery.createdAt)\n"
            for hash in recovery.hashes { text += "recovery hash=\(hexString(hash))\n" }
        }
        return Array(text.utf8)
    }
}

extension DeviceFileLocation {
    /// `PATH.lock` beside the device file: the lock of its writers (engage2fa-enroll run by the user, or by
    /// root for the user). Created with the user's identity in a home, so only the user (and root) can
    /// take it; the module and engage2fa-admin never wait for it longer than a moment.
    var lockPath: String { path + ".lock" }

    /// The device file's own transaction: under its lock (waiting at most `timeoutSeconds`), re-read the
    /// file, let `body` change it, and replace it atomically if it changed. nil from `body`'s file means
    /// there was none.
    public func update<Result>(
        timeoutSeconds: Int = 5, _ body: (inout DeviceFile) throws(CoreError) -> Result
    ) throws(CoreError) -> Result {
        try withLock(timeoutSeconds: timeoutSeconds) { () throws(CoreError) -> Result in
            let original = try load() ?? DeviceFile()
            var file = original
            let result = try body(&file)
            if file != original { try save(file) }
            return result
        }
    }

    /// Removes the device file under its lock, waiting at most `timeoutSeconds` (the lock is the user's:
    /// an admin command never waits on it for long), without reading it: a file that does not parse goes
    /// too. A missing file is fine.
    public func remove(timeoutSeconds: Int = 2) throws(CoreError) {
        try withLock(timeoutSeconds: timeoutSeconds) { () throws(CoreError) in
            try withIdentity { () throws(CoreError) in
                do throws(Errno) { try FileSystem.remove(path) } catch .noSuchFileOrDirectory {} catch {
                    throw .file(.system(path: path, SystemError("unlink", error)))
                }
            }
        }
    }

    private func withLock<Result>(timeoutSeconds: Int, _ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
        let lock = try withIdentity { () throws(CoreError) -> FileDescriptor in
            do throws(Errno) { return try FileDescriptor.open(lockPath, .readWrite, options: .create, permissions: .ownerReadWrite) } catch {
                throw .file(.system(path: lockPath, SystemError("open", error)))
            }
        }
        return try lock.closeAfter { () throws(CoreError) -> Result in
            do throws(Errno) { try lock.lockExclusively(timeoutSeconds: timeoutSeconds) } catch {
                if error == .wouldBlock { throw .state(.lockTimeout(path: lockPath, seconds: timeoutSeconds)) }
                throw .state(.lock(path: lockPath, SystemError("flock", error)))
            }
            return try body()
        }
    }

    private func withIdentity<Result>(_ body: () throws(CoreError) -> Result) throws(CoreError) -> Result {
        isInHome ? try withFileSystemIdentity(of: account, body) : try body()
    }

    /// Replaces the file atomically (mode 600).
    public func save(_ file: DeviceFile) throws(CoreError) {
        let contents = file.serialized()
        if isInHome {
            // Created under the user's fsuid and fsgid, the new file is the user's without a chown.
            try withFileSystemIdentity(of: account) { () throws(CoreError) in
                do throws(TrustedFileError) { try writeFileAtomically(path, contents: contents) } catch { throw .file(error) }
            }
            return
        }
        let existing = try? FileStatus(path: path, followSymbolicLinks: true)
        let owner = existing.map { (uid: $0.owner, gid: $0.group) } ?? (uid: account.uid, gid: account.gid)
        do { try writeFileAtomically(path, contents: contents, owner: effectiveUserID() == 0 ? owner : nil) } catch { throw .file(error) }
    }
}
