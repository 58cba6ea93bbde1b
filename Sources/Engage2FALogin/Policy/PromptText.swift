/// The words the person at the PAM prompt meets for a decision (`Login` shows them through the
/// conversation; `engage2fa-enroll status` repeats them). Embedded Swift: plain string building only.

/// "in 16 days", "in 1 day", "today" (see `daysLeft`).
public func daysLeftText(now: Int64, until: Int64) -> String {
    let days = daysLeft(now: now, until: until)
    switch days {
    case 0: return "today"
    case 1: return "in 1 day"
    default: return MessageText("in \(days) days").text
    }
}

/// A policy date as the user reads it: as written when it is a date only, else local date and time.
public func displayDate(_ date: PolicyDate) -> String {
    date.isDateOnly ? date.text : localDateTimeText(date.unixTime)
}

extension PolicyDecision.NoCode {
    /// The notice shown before the login goes on without a code; nil when there is nothing to say.
    /// Optimized for size: shown only to a user with no device, before or during their grace.
    @_optimize(size)
    public func promptText(now: Int64) -> String? {
        switch self {
        case .beforeStart(_, enrolled: true), .exempt:
            return nil
        case .beforeStart(let start, enrolled: false):
            return MessageText("Two-factor authentication becomes mandatory on \(displayDate(start)) (\(daysLeftText(now: now, until: start.unixTime))). Run engage2fa-enroll to link your authenticator app.").text
        case .personalDeadline(let deadline):
            return MessageText("Two-factor authentication is mandatory on this host. Your personal deadline is \(displayDate(deadline)) (\(daysLeftText(now: now, until: deadline.unixTime))): link your authenticator app before then with engage2fa-enroll.").text
        }
    }
}

extension PolicyDecision.Refusal {
    /// Why `user` is refused, and what to do about it. Optimized for size: a refusal is the rare path.
    @_optimize(size)
    public func promptText(user: String) -> String {
        let why: MessageText
        switch self {
        case .devicesUnreadable:
            return "Two-factor authentication is mandatory, and your authenticator devices could not be read. Ask an administrator to check the system log."
        case .deadlinePassed(let deadline):
            why = "Your deadline to link an authenticator app passed on \(displayDate(deadline))."
        case .noDevice(let activeSince):
            why = "Two-factor authentication has been mandatory since \(localDateText(activeSince)), and you have not linked an authenticator app."
        }
        return MessageText("\(why) Ask an administrator for a personal deadline (engage2fa-admin extend \(displayText(user, limit: 64)) DATE), then log in and run engage2fa-enroll.").text
    }
}
