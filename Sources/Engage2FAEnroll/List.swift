import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List your linked devices and how many recovery codes are left.")

    @OptionGroup var options: UserOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        let context = try EnrollContext(options)
        let file = try context.loadDevices()
        // Root's state says which codes were used at a login and what an administrator revoked.
        let state = context.state()
        let devices = state?.liveDevices(of: file) ?? file.devices
        let left = state?.liveRecoveryCodes(of: file).count ?? file.recovery?.hashes.count ?? 0
        if json {
            let items = devices.map { device in
                "{\"name\":\(jsonString(device.name)),\"added\":\(jsonString(localDateText(device.addedAt))),\"added_unix\":\(device.addedAt),"
                    + "\"algorithm\":\"\(device.parameters.algorithm.rawValue)\",\"digits\":\(device.parameters.digits),\"period\":\(device.parameters.period)}"
            }
            print("{\"user\":\(jsonString(context.account.name)),\"devices\":[\(items.joined(separator: ","))],\"recovery_codes_left\":\(left)}")
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
        print("Recovery codes left: \(left)" + (state == nil ? " (could not read the host's record of used codes)" : ""))
    }
}
