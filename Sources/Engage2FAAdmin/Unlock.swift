import ArgumentParser
import Engage2FACommandSupport
import Engage2FACore

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Clear a user's lockout after too many wrong codes (devices stay).")

    @OptionGroup var policy: PolicyOptions

    @Argument(help: "The user.")
    var user: String

    func run() throws {
        try requireRoot("unlock")
        let config = try policy.load()
        _ = try existingAccount(user)
        do {
            try StateStore(directory: config.stateDir).clear(user: user, devices: false)
        } catch {
            throw CommandFailure("could not clear the lockout of \(user): \(error)")
        }
        audit("unlock \(user): cleared lockout")
        print("Cleared the lockout of \(user).")
    }
}
