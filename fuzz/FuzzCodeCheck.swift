import Engage2FALogin

/// Any bytes typed at the prompt: never a crash; accepted only if, trimmed, they are exactly the
/// device's code for a step in the window; recovery-code normalisation gives a recovery or a scratch code or nothing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let typed = Array(UnsafeBufferPointer(start: data, count: size))
    let secret = Array("12345678901234567890".utf8)
    let now: Int64 = 1_111_111_109
    for parameters in [OTPParameters(), OTPParameters(algorithm: .sha256, digits: 8, period: 60)] {
        let check = verifyTOTP(code: typed, secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: nil)
        if case .accepted(let step) = check {
            precondition(normalizedCode(typed, digits: parameters.digits) == totp(secret: secret, step: step, parameters: parameters), "accepted a code that is not the step's")
        }
        let replay = verifyTOTP(code: typed, secret: secret, parameters: parameters, now: now, window: 1, lastAcceptedStep: parameters.step(at: now) + 1)
        if case .accepted = replay { preconditionFailure("accepted a code at or before the last accepted step") }
    }
    // Our own codes, or eight digits (a google-authenticator scratch code kept by `engage2fa-admin import`).
    if let normalized = RecoveryCodes.normalize(typed) {
        precondition(normalized.count == RecoveryCodes.codeLength || normalized.count == RecoveryCodes.scratchCodeLength)
    }
    return 0
}
