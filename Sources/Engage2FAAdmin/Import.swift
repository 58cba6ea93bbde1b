import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

extension Admin {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move users over from google-authenticator or pam_oath: their phones keep working.",
            discussion: """
                --from google-authenticator USER...: reads each user's ~/.google_authenticator with the user's \
                file-system identity (a regular file the user owns, not readable by others); the secret becomes \
                a device named 'imported from google-authenticator' (its STEP_SIZE kept), the scratch codes \
                recovery codes (stored hashed), the steps of DISALLOW_REUSE replay state. Counter-based (HOTP) \
                files are refused. --from oath FILE [USER...]: pam_oath's usersfile (root's); HOTP/T30 and \
                HOTP/T60 lines, the passwords in it never copied. A user who already has devices or recovery \
                codes is not imported (remove them first: engage2fa-admin reset USER). The source is left \
                alone unless --remove-source. Exits 1 if any user could not be imported.
                """
        )

        enum Source: String, ExpressibleByArgument, CaseIterable {
            case googleAuthenticator = "google-authenticator"
            case oath
        }

        @OptionGroup var policy: PolicyOptions

        @Option(name: .long, help: "The tool to import from: google-authenticator or oath.")
        var from: Source

        @Flag(name: .long, help: "Say what would be imported, change nothing.")
        var dryRun = false

        @Flag(name: .long, help: "Remove each user's ~/.google_authenticator (or their usersfile line) once imported.")
        var removeSource = false

        @Argument(help: ArgumentHelp("google-authenticator: the users. oath: the usersfile, then the users to take from it (all when none).", valueName: "user-or-file"))
        var names: [String]

        func validate() throws {
            guard !names.isEmpty else { throw ValidationError(from == .oath ? "name the usersfile (e.g. /etc/users.oath)" : "name at least one user") }
            for name in from == .oath ? Array(names.dropFirst()) : names { try UserName(argument: name).validate() }
            if from == .oath, !names[0].hasPrefix("/") { throw ValidationError("the usersfile must be an absolute path, not '\(displayLine(names[0]))'") }
        }

        func run() throws {
            try requireRoot("import")
            let config = try policy.load()
            let store = StateStore(directory: config.stateDir)
            var failures = 0
            func report(_ name: String, _ result: Result<String, ImportProblem>) {
                switch result {
                case .success(let message): print(displayLine(message))
                case .failure(let problem):
                    failures += 1
                    printError(displayLine("\(displayText(name, limit: 64)): not imported: \(problem)"))
                }
            }
            switch from {
            case .googleAuthenticator:
                for name in names {
                    report(name, Result { () throws(ImportProblem) -> String in
                        let account = try importAccount(name)
                        let path = account.home + "/" + GoogleAuthenticatorFile.fileName
                        let bytes: [UInt8]
                        do {
                            bytes = try withFileSystemIdentity(of: account) { () throws(CoreError) -> [UInt8] in
                                do throws(TrustedFileError) {
                                    return try readTrustedFile(path, owners: [account.uid], maxSize: GoogleAuthenticatorFile.maxSize)
                                } catch { throw CoreError.file(error) }
                            }
                        } catch { throw ImportProblem("cannot use \(displayText(path)): \(error)") }
                        let token = try GoogleAuthenticatorFile.parse(bytes, path: path)
                        let removal: (() throws(ImportProblem) -> Void)? = removeSource ? {
                            () throws(ImportProblem) in
                            do {
                                try withFileSystemIdentity(of: account) { () throws(CoreError) in
                                    if path.withCString({ unlink($0) }) != 0 { throw CoreError.system(SystemError("unlink \(path)")) }
                                }
                            } catch { throw ImportProblem("imported, but \(displayText(path)) could not be removed: \(error)") }
                        } : nil
                        return try importToken(token, account: account, config: config, store: store, sourcePath: path, removal: removal)
                    })
                }
            case .oath:
                let path = names[0]
                let wanted = Array(names.dropFirst())
                let bytes: [UInt8]
                do { bytes = try readTrustedFile(path, owners: [0], maxSize: OathUsersFile.maxSize, forbidden: .groupOrOthersWrite) } catch {
                    throw CommandFailure("cannot use the usersfile: \(error)")
                }
                let lines: [OathUserLine]
                do { lines = try OathUsersFile.parse(bytes, path: path) } catch { throw CommandFailure(error.description) }
                for user in wanted where !lines.contains(where: { $0.user == user }) {
                    report(user, .failure(ImportProblem("no line for this user in \(displayText(path))")))
                }
                if removeSource {
                    printError("--remove-source: the usersfile is root's and shared; remove the imported lines from \(displayText(path)) by hand once every user logs in")
                }
                for line in lines where wanted.isEmpty || wanted.contains(line.user) {
                    report(line.user, Result { () throws(ImportProblem) -> String in
                        let token = try line.token.get()
                        let account = try importAccount(line.user)
                        return try importToken(token, account: account, config: config, store: store, sourcePath: "\(path):\(line.line)", removal: nil)
                    })
                }
            }
            if failures > 0 { throw ExitCode(1) }
        }

        /// Writes the device (and the recovery codes) into the user's device file, and the replay state into
        /// the user's state, in the user's one transaction; says what it did (or, with --dry-run, would do).
        func importToken(
            _ token: ImportedToken, account: Account, config: Config, store: StateStore, sourcePath: String,
            removal: (() throws(ImportProblem) -> Void)?
        ) throws(ImportProblem) -> String {
            let shown = displayText(account.name, limit: 64)
            let location = DeviceFileLocation(account: account, config: config)
            let what = "device '\(token.deviceName)' (\(token.parameters.algorithm.rawValue), \(token.parameters.digits) digits, \(token.parameters.period) s)"
                + (token.scratchCodes.isEmpty ? "" : ", \(token.scratchCodes.count) scratch code\(token.scratchCodes.count == 1 ? "" : "s") as recovery codes")
                + (token.lastUsedStep == nil ? "" : ", codes up to the last one used refused (replay state)")
            let source = removal == nil ? "\(displayText(sourcePath)) left in place" : "\(displayText(sourcePath)) removed"
            do {
                let existing = try store.read(account: account)
                let file = try location.load()
                let devices = existing.liveDevices(of: file).count, codes = existing.liveRecoveryCodes(of: file).count
                if devices + codes > 0 {
                    throw ImportProblem("already has \(devices) device\(devices == 1 ? "" : "s") and \(codes) recovery code\(codes == 1 ? "" : "s") in \(displayText(location.path)); nothing changed (to replace them: engage2fa-admin reset \(shown), then import again)")
                }
            } catch let problem as ImportProblem { throw problem } catch {
                throw ImportProblem(explain(error, account: account))
            }
            if dryRun { return "\(shown): would import \(what) into \(displayText(location.path)); \(removal == nil ? "\(displayText(sourcePath)) would be left in place" : "\(displayText(sourcePath)) would be removed") (dry run: nothing changed)" }
            let now = currentUnixTime()
            do {
                try adminTransaction(store: store, account: account, devices: location) { (state: inout UserState, file: DeviceFile?) throws(CoreError) in
                    // Read again under the lock: a device linked meanwhile is not overwritten.
                    guard state.liveDevices(of: file).isEmpty, state.liveRecoveryCodes(of: file).isEmpty else {
                        throw CoreError.system(SystemError("a device was linked meanwhile; nothing changed"))
                    }
                    let device = try location.update { (file: inout DeviceFile) throws(CoreError) -> Device in
                        let device = try file.addDevice(name: token.deviceName, secret: token.secret, parameters: token.parameters, now: now)
                        if !token.scratchCodes.isEmpty {
                            do throws(SystemError) { file.recovery = try RecoveryCodes.importing(token.scratchCodes, now: now) } catch { throw .system(error) }
                        }
                        return device
                    }
                    if let step = token.lastUsedStep { state.devices[device.id] = DeviceUsage(lastStep: step, lastUsed: now) }
                }
            } catch {
                throw ImportProblem(explain(error, account: account) + "; nothing changed")
            }
            try removal?()
            audit("import \(shown) from \(token.source) (\(displayText(sourcePath))): \(what)")
            return "\(shown): imported \(what) into \(displayText(location.path)); \(source). The user's app keeps working."
        }

        private func importAccount(_ name: String) throws(ImportProblem) -> Account {
            guard isSafeUserName(name), let account = Account.lookup(name) else { throw ImportProblem("there is no user '\(displayText(name, limit: 64))' on this host") }
            return account
        }
    }
}
