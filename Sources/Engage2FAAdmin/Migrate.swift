import ArgumentParser
import Engage2FACommandSupport
import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement
#if canImport(Glibc)
import Glibc
#endif

extension Admin {
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fleet mode: copy this host's local devices and recovery codes into the directory.",
            discussion: """
                Run once per host after setting store = ldap (any number of times: a device already in the directory \
                is left as it is). Devices keep their ids, names, secrets and the last code step used here, so no code \
                used on this host is accepted again; recovery codes are copied when the directory has none for the user. \
                Nothing local is deleted: the device files stay, for going back to store = local.
                """
        )

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Flag(name: .customLong("dry-run"), help: "Only say what would be copied.")
        var dryRun = false

        @Argument(help: "Only these users (default: every user with a login shell).")
        var users: [UserName] = []

        func validate() throws {
            for user in users { try user.validate() }
        }

        func run() throws {
            try requireRoot("migrate")
            let config = try policy.load()
            guard config.fleet.store == .ldap else { throw CommandFailure("\(displayText(policy.config)) does not set store = ldap: nothing to migrate to") }
            let fleet = try FleetAdmin(config: config, options: directory)
            let store = StateStore(directory: config.stateDir)
            let accounts = users.isEmpty ? loginShellAccounts() : try users.map(\.name).map(existingAccount)
            var copied = 0, present = 0, failed = 0
            for account in accounts {
                let shown = displayText(account.name, limit: 64)
                let file: DeviceFile
                let state: UserState
                do {
                    guard let loaded = try DeviceFileLocation(account: account, config: config).load() else { continue }
                    file = loaded
                    state = try store.read(account: account)
                } catch {
                    printError("\(shown): skipped: \(explain(error, account: account))")
                    failed += 1
                    continue
                }
                let found = try fleet.user(account.name)
                for device in state.liveDevices(of: file) {
                    if found.devices.contains(where: { $0.device.id == device.id }) {
                        present += 1
                        continue
                    }
                    let used = [device.verifiedStep, state.devices[device.id]?.lastStep].compactMap { $0 }.max()
                    if dryRun {
                        print("\(shown): would copy '\(displayText(device.name, limit: 64))'")
                    } else if case .failure(let failure) = fleet.directory.addDevice(device, lastStep: used, user: account.name, layout: fleet.layout) {
                        printError("\(shown): '\(displayText(device.name, limit: 64))' not copied: \(failure.text)")
                        failed += 1
                        continue
                    } else {
                        print("\(shown): copied '\(displayText(device.name, limit: 64))'")
                    }
                    copied += 1
                }
                let liveCodes = state.liveRecoveryCodes(of: file)
                if let recovery = file.recovery, !liveCodes.isEmpty, found.recovery == nil, !dryRun {
                    try fleet.ensureUser(account.name)
                    try fleet.modify(fleet.layout.userDN(account.name), [
                        .replace("e2faRecoverySalt", [Array(hexString(recovery.salt).utf8)]),
                        .replace("e2faRecoveryIterations", [Array(String(recovery.iterations).utf8)]),
                        .replace("e2faRecoveryHash", liveCodes.map { Array(hexString(recovery.hashes[$0]).utf8) }),
                    ], what: "copy the recovery codes")
                    print("\(shown): copied \(liveCodes.count) recovery code\(liveCodes.count == 1 ? "" : "s")")
                }
            }
            if !dryRun { audit("migrate: \(copied) device(s) copied to the directory, \(present) already there, \(failed) failed") }
            print("\(copied) device\(copied == 1 ? "" : "s") \(dryRun ? "to copy" : "copied"), \(present) already in the directory, \(failed) problem\(failed == 1 ? "" : "s").")
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
