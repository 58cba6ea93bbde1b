import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Enroll {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your linked devices and how many recovery codes are left.")

        @OptionGroup var options: UserOptions

        @Flag(name: .long, help: "Print JSON instead of a table.")
        var json = false

        func run() throws {
            let context = try EnrollContext(options)
            if context.config.fleet.store == .ldap { return try runInFleet(context) }
            let file = try context.loadDevices()
            context.warnAboutNames(in: file)
            // Root's state says which codes were used at a login and what an administrator revoked.
            let state = context.state()
            let devices = state?.liveDevices(of: file) ?? file.devices
            let left = state?.liveRecoveryCodes(of: file).count ?? file.recovery?.hashes.count ?? 0
            try show(context, devices.map { ListedDevice(name: $0.name, addedAt: $0.addedAt, parameters: $0.parameters) }, recoveryCodesLeft: left,
                     note: state == nil ? " (could not read the host's record of used codes)" : "")
        }

        /// The devices as a table (names escaped) or as JSON, then the recovery codes left.
        func show(_ context: EnrollContext, _ devices: [ListedDevice], recoveryCodesLeft left: Int, note: String, extra: [String] = []) throws {
            if json {
                let listing = Listing(user: context.account.name, devices: devices.map(Listing.Device.init), recoveryCodesLeft: left)
                print(try jsonText(listing))
                return
            }
            if devices.isEmpty {
                print("No devices linked for \(context.shownUser). Run engage2fa-enroll to link one.")
            } else {
                let names = devices.map { displayText($0.name, limit: 256) }
                let width = max(4, names.map(\.count).max() ?? 0)
                print("NAME".padded(width) + "  ADDED       CODES")
                for (device, name) in zip(devices, names) {
                    let p = device.parameters
                    print(name.padded(width) + "  " + localDateText(device.addedAt) + "  \(p.digits) digits, \(p.period) s, \(p.algorithm.rawValue)")
                }
            }
            for line in extra { print(line) }
            print("Recovery codes left: \(left)" + note)
        }

        /// What `list --json` prints (keys sorted by the encoder).
        struct Listing: Encodable {
            var user: String
            var devices: [Device]
            var recoveryCodesLeft: Int

            enum CodingKeys: String, CodingKey {
                case user, devices
                case recoveryCodesLeft = "recovery_codes_left"
            }

            struct Device: Encodable {
                var name: String
                /// The local date it was linked (YYYY-MM-DD), and the moment as a Unix time.
                var added: String
                var addedUnix: Int64
                var algorithm: String
                var digits: Int
                var period: Int

                enum CodingKeys: String, CodingKey {
                    case name, added, algorithm, digits, period
                    case addedUnix = "added_unix"
                }

                init(_ device: ListedDevice) {
                    name = device.name
                    added = localDateText(device.addedAt)
                    addedUnix = device.addedAt
                    algorithm = device.parameters.algorithm.rawValue
                    digits = device.parameters.digits
                    period = device.parameters.period
                }
            }
        }
    }
}
