import Engage2FALogin

/// Any bytes as a state file: never a crash, what parses survives a write–read round trip, and no
/// arithmetic a login does with what was parsed can trap (the numbers are range-checked on reading).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard var state = try? UserState.parse(bytes, path: "fuzz") else { return 0 }
    precondition((try? UserState.parse(state.serialized(), path: "fuzz")) == state, "state did not survive a round trip")
    // What Login does with a state, at the extremes of a sane clock and of the policy's ranges.
    for now: Int64 in [0, 1_764_000_000, 1 << 40] {
        for (maxFailures, lockoutSeconds) in [(1, 1), (100, 86_400)] {
            var copy = state
            _ = copy.lockoutRemaining(now: now, lockoutSeconds: lockoutSeconds)
            copy.clampLockout(now: now, lockoutSeconds: lockoutSeconds)
            for _ in 0..<3 { _ = copy.recordFailure(now: now, maxFailures: maxFailures, lockoutSeconds: lockoutSeconds) }
            for (id, usage) in copy.devices {
                let parameters = OTPParameters()
                _ = verifyTOTP(code: Array("123456".utf8), secret: Array(repeating: 1, count: 20), parameters: parameters, now: now,
                               window: 10, lastAcceptedStep: usage.lastStep)
                copy.recordSuccess(deviceID: id, step: usage.lastStep + 1, now: now)
            }
            _ = copy.serialized()
        }
    }
    state.prune(for: nil)
    _ = state.serialized()
    return 0
}
