import Glibc
import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Admin {
    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "For a lost phone: remove all of a user's devices and recovery codes and clear their lockout.",
            discussion: """
                One change in the user's state under state_dir: every device and recovery code the user has is \
                revoked, replay state and lockout are cleared and, with --deadline, a personal deadline is set — \
                all together or nothing. The device file is then removed as well. Once 2FA is active, a reset \
                without --deadline leaves the user refused at every login: it asks first (--yes when not on a terminal).
                """
        )

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Argument(help: "The user.")
        var user: UserName

        @Option(name: .long, help: ArgumentHelp("Also grant a personal deadline, later than now: YYYY-MM-DD (00:00 local time) or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM.", valueName: "date"))
        var deadline: DateArgument?

        @Flag(name: .long, help: "Do not ask for confirmation.")
        var yes = false

        func validate() throws {
            try user.validate()
            try deadline?.validateDeadline()
        }

        func run() throws {
            try requireRoot("reset")
            let config = try policy.load()
            let account = try existingAccount(user.name)
            let newDeadline = try deadline?.date()
            let shown = displayText(account.name, limit: 64)
            if config.fleet.store == .ldap {
                // Every host's logins depend on it: no interactive question, an explicit choice.
                guard newDeadline != nil || yes else {
                    throw CommandFailure("in fleet mode reset removes \(shown)'s devices on every host: add --deadline DATE, or --yes; nothing was changed")
                }
                return try Admin.resetInFleet(FleetAdmin(config: config, options: directory), user: account.name, deadline: newDeadline)
            }
            let store = StateStore(directory: config.stateDir)
            let location = DeviceFileLocation(account: account, config: config)

            if newDeadline == nil && !yes {
                let before = outcomeAfterChange(account: account, config: config, configPath: policy.config, store: store)
                if before.state != .notActiveYet && before.state != .notConfigured && before.deadline.map({ $0.unixTime <= currentUnixTime() }) ?? true {
                    let warning = "2FA is mandatory: without a device \(shown) will be refused at every login until given a deadline (engage2fa-admin extend \(shown) DATE, or reset --deadline)."
                    guard isTerminal(STDIN_FILENO) else { throw CommandFailure(warning + " Add --deadline DATE, or --yes to reset anyway; nothing was changed") }
                    print(warning)
                    guard confirmed("Remove all devices and recovery codes of \(shown)?") else {
                        print("Nothing was changed.")
                        return
                    }
                }
            }

            let revoked: Int
            // A device file that cannot be used (one the user broke, made group-readable, or replaced by a
            // symbolic link) is no reason to keep a lost phone working: then the state is reset without its ids
            // and the file is removed unread, inside the same transaction — if it cannot be removed, nothing changes.
            var readable = true
            do { _ = try location.load() } catch { readable = false }
            var leftover = ""
            do {
                revoked = try adminTransaction(store: store, account: account, devices: readable ? location : nil) { (state: inout UserState, file: DeviceFile?) throws(CoreError) -> Int in
                    let devices = state.liveDevices(of: file)
                    for device in devices where !state.revokedDevices.contains(device.id) { state.revokedDevices.append(device.id) }
                    if let salt = file?.recovery?.salt, !state.revokedRecoverySalts.contains(salt) { state.revokedRecoverySalts.append(salt) }
                    state.devices = [:]
                    state.failures = 0
                    state.lockedUntil = 0
                    if let newDeadline { state.deadline = newDeadline }
                    // With the ids revoked, the file is only tidied away; without them, removing it is the reset.
                    do throws(CoreError) { try location.remove() } catch {
                        if !readable { throw error }
                        leftover = " The device file \(displayText(location.path)) could not be removed (\(error)); its devices no longer let anyone in."
                    }
                    return devices.count
                }
            } catch {
                throw CommandFailure("could not reset \(shown): \(explain(error, account: account)); nothing was changed")
            }
            audit("reset \(shown): removed all devices and recovery codes, cleared lockout" + (newDeadline.map { "; personal deadline \($0.text)" } ?? "")
                  + " (\(revoked) device\(revoked == 1 ? "" : "s") revoked)")
            let after = outcomeAfterChange(account: account, config: config, configPath: policy.config, store: store)
            let meets: String = switch after.state {
            case .grace(let until, _): " They have until \(until.text) to link a new device with engage2fa-enroll."
            case .refused: " 2FA is mandatory: \(shown) is now refused at every login until given a deadline (engage2fa-admin extend \(shown) DATE)."
            case .notActiveYet, .notConfigured: " 2FA is not mandatory yet: \(shown) logs in with the password and can link a new device."
            default: ""
            }
            print("Removed all devices and recovery codes of \(shown) and cleared their lockout." + meets + leftover)
        }
    }
}
