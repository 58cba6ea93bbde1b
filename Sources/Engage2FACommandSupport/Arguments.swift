import ArgumentParser
import Engage2FALogin
import Engage2FAManagement

// Values from the command line that have rules of their own. Each is parsed when the command line is
// and checked in the command's `validate()`, so that a value that breaks its rule is a usage error
// (exit 64, with the parser's usage line), reported before anything is read or changed.
//
// Why not a failable `init?(argument:)` that refuses the value itself: the parser would then say
// "The value '…' is invalid for '<user>'", quoting the value raw — the escape sequences an unsafe
// name is refused for would reach the terminal — and without the reason (the core's "is not a date
// (expected YYYY-MM-DD, …)"). Here the message is ours and every quoted value is escaped.

/// A user name as typed. `validate()` refuses one that is unsafe in a path or a log line
/// (`isSafeUserName`: empty, `/`, a control character, `.` or `..`, more than 256 bytes).
///
/// A well-formed name that the user database does not know is not a usage error: whether it exists
/// is a fact about the host (NSS, LDAP, sssd) found out when the command runs, reported as a runtime
/// error ("there is no user …", exit 1).
public struct UserName: ExpressibleByArgument, CustomStringConvertible, Sendable, Equatable {
    public var name: String

    public init(argument: String) { name = argument }

    public var description: String { name }

    /// The name escaped for a message.
    public var shown: String { displayText(name, limit: 64) }

    public func validate() throws(ValidationError) {
        guard isSafeUserName(name) else {
            throw ValidationError("'\(shown)' is not a valid user name (it must not be empty, '.' or '..', or hold '/' or a control character, and is at most 256 bytes)")
        }
    }
}

/// A date or date-time as the policy file writes them (`PolicyDate`): YYYY-MM-DD, 00:00 local time,
/// or YYYY-MM-DDTHH:MM[:SS] with Z or ±HH:MM.
public struct DateArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    public var text: String
    private var parsed: Result<PolicyDate, PolicyDate.ParseError>

    public init(argument: String) {
        text = argument
        do { parsed = .success(try PolicyDate(parsing: argument)) } catch { parsed = .failure(error) }
    }

    public var description: String { text }

    /// The date; a usage error if the text is not one.
    public func date() throws(ValidationError) -> PolicyDate {
        switch parsed {
        case .success(let date): return date
        case .failure(let error): throw ValidationError(displayLine("\(error)", limit: 512))
        }
    }

    /// A deadline: a date that is later than `now`.
    @discardableResult
    public func validateDeadline(now: Int64 = currentUnixTime()) throws(ValidationError) -> PolicyDate {
        let date = try date()
        guard date.unixTime > now else {
            throw ValidationError("\(displayText(text, limit: 64)) is in the past: a deadline must be later than now")
        }
        return date
    }
}
