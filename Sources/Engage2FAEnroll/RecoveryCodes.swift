import ArgumentParser
import Engage2FACommandSupport
import Engage2FALogin
import Engage2FAManagement

extension Enroll {
    struct RecoveryCodes: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recovery-codes",
            abstract: "Make 10 new one-time recovery codes (replacing any earlier ones).",
            discussion: "Each code lets you log in once instead of a verification code. Only salted hashes are stored: the codes are shown this once."
        )

        @OptionGroup var options: UserOptions

        func run() throws {
            let context = try EnrollContext(options)
            if context.config.fleet.store == .ldap { return try runInFleet(context) }
            let (codes, stored) = try Engage2FALogin.RecoveryCodes.generate(now: currentUnixTime())
            let state = context.state()
            let replaced = try context.update { (file: inout DeviceFile) throws -> Int in
                let left = state?.liveRecoveryCodes(of: file).count ?? file.recovery?.hashes.count ?? 0
                file.recovery = stored
                return left
            }
            showCodes(codes, replaced: replaced)
        }

        func showCodes(_ codes: [String], replaced: Int) {
            print("Your recovery codes (each works once; keep them somewhere safe, away from your phone):")
            for pair in stride(from: 0, to: codes.count, by: 2) {
                print("  " + displayText(codes[pair], limit: 64) + "    " + (pair + 1 < codes.count ? displayText(codes[pair + 1], limit: 64) : ""))
            }
            if replaced > 0 { print("The \(replaced) unused codes you had before no longer work.") }
        }
    }
}
