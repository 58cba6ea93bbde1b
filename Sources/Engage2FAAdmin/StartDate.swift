import ArgumentParser
import Engage2FACommandSupport
import Engage2FADirectory
import Engage2FALogin
import Engage2FAManagement

extension Admin {
    struct StartDate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "start-date",
            abstract: "Fleet mode: set the fleet's start date in the directory (from then on 2FA is mandatory on every host).",
            discussion: """
                Writes e2faStartDate on the directory's policy entry, binding as a directory administrator. \
                Activation is add-only: once the fleet (or a host) has seen the start date pass, 2FA stays \
                mandatory, and a later date does not turn it off again; give users personal deadlines with \
                extend instead. A date now or in the past starts 2FA at once and records the activation.
                """
        )

        @OptionGroup var policy: PolicyOptions
        @OptionGroup var directory: DirectoryOptions

        @Argument(help: "The start date: YYYY-MM-DD (00:00 local time) or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM.")
        var date: DateArgument

        /// A date that does not parse is a usage error, found before root or the directory is needed.
        func validate() throws {
            _ = try date.date()
        }

        func run() throws {
            try requireRoot("start-date")
            let config = try policy.load()
            guard config.fleet.store == .ldap else {
                throw CommandFailure("\(policy.config) does not say store = ldap: in local mode the start date is start_date in that file; nothing was changed")
            }
            let start = try date.date()
            let fleet = try FleetAdmin(config: config, options: directory)
            let now = currentUnixTime()
            let (before, activatedAt) = try fleet.policy()
            let (_, activation) = try fleet.effectivePolicy(configPath: policy.config)
            try fleet.modify(fleet.layout.policyDN, [.replace("e2faStartDate", [Array(start.text.utf8)])], what: "set the start date")
            audit("start-date: \(before?.text ?? "none") -> \(start.text) (in the directory)")
            if case .active = activation {
                let since = activatedAt.map { " (since \(localDateTimeText($0)))" } ?? " (on this host)"
                print("Start date is now \(start.text). The fleet is already active\(since): 2FA stays mandatory on every host that saw it active, whatever the date says; a later date does not turn it off. For more time for users without a device, use: engage2fa-admin extend USER DATE")
                return
            }
            guard start.unixTime <= now else {
                print("Start date is now \(start.text): from then on 2FA is mandatory on every host of the fleet.")
                return
            }
            // Recorded as a host would at its next login (add-only): a date moved later after this changes nothing.
            let code = fleet.directory.modify(dn: fleet.layout.policyDN, [.add("e2faActivatedAt", [Array(String(now).utf8)])])
            guard code == LDAPResult.success || LDAPResult.lostRace(code) else {
                throw CommandFailure("the start date is set, but the activation could not be recorded: \(fleet.directory.describe(code)); the hosts record it at their next login")
            }
            print("Start date is now \(start.text), which has passed: 2FA is mandatory on every host of the fleet from now on (activation recorded).")
        }
    }
}
