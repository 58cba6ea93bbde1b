import Glibc
import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Enroll {
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unlink one device by name.")

        @OptionGroup var options: UserOptions

        @Argument(help: "The device's name, as 'engage2fa-enroll list' shows it (case does not matter).")
        var name: String

        @Flag(name: .long, help: "Do not ask for confirmation (needed when standard input is not a terminal).")
        var yes = false

        func run() throws {
            let context = try EnrollContext(options)
            if context.config.fleet.store == .ldap { return try runInFleet(context) }
            var file = try context.loadDevicesToEdit()
            if let state = context.state() { file.devices = state.liveDevices(of: file) }
            guard let device = file.device(named: name) else {
                let names = file.devices.map { "'\(displayText($0.name, limit: 256))'" }.joined(separator: ", ")
                throw CommandFailure("there is no device named '\(displayText(name, limit: 256))'" + (names.isEmpty ? " (no devices are linked)" : " (linked: \(names))"))
            }
            let last = file.devices.count == 1
            if !yes {
                guard isTerminal(STDIN_FILENO) else { throw CommandFailure("removing a device needs confirmation: add --yes") }
                if last { print("'\(displayText(device.name, limit: 256))' is your last device: once 2FA is mandatory you cannot log in without one (or a recovery code).") }
                guard let answer = readAnswer(prompt: "Remove '\(displayText(device.name, limit: 256))'? [y/N] "), ["y", "yes"].contains(answer.lowercased()) else {
                    print("Nothing was removed.")
                    return
                }
            }
            // Under the device file's lock, on the file as it is now (a login or another command may have
            // changed things while the question was on the screen).
            let left = try context.update { (current: inout DeviceFile) throws -> Int in
                guard current.removeDevice(named: device.name) else { throw CommandFailure("'\(displayText(device.name, limit: 64))' was removed meanwhile; nothing was changed") }
                return current.devices.count
            }
            print("Removed '\(displayText(device.name, limit: 256))'." + (left == 0 ? " No devices are linked now." : ""))
        }
    }
}
