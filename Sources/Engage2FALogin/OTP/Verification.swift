/// The outcome of checking one typed code against one device.
public enum CodeCheck: Equatable, Sendable {
    /// The code is the device's code for `step`, newer than any code accepted before.
    case accepted(step: Int64)
    /// The code is right but its step was already used (or is older than one that was).
    case replayed
    /// Digits of the right length that match no step in the window.
    case wrong
    /// Not `digits` decimal digits.
    case malformed
}

/// What the user typed, trimmed of surrounding whitespace. Returns nil unless it is exactly
/// `digits` ASCII digits, so that letters, signs, and over-long input never reach the comparison.
public func normalizedCode<Input: Collection>(_ input: Input, digits: Int) -> [UInt8]? where Input.Element == UInt8 {
    let bytes = Array(input)
    return bytes.withUnsafeBufferPointer { codeDigits($0, digits: digits).map { Array($0) } }
}

/// The `digits` ASCII digits `bytes` hold between surrounding whitespace; nil for anything else.
private func codeDigits(_ bytes: UnsafeBufferPointer<UInt8>, digits: Int) -> Slice<UnsafeBufferPointer<UInt8>>? {
    let isSpace: (UInt8) -> Bool = { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) }
    var first = 0
    var end = bytes.count
    while first < end && isSpace(bytes[first]) { first += 1 }
    while end > first && isSpace(bytes[end - 1]) { end -= 1 }
    guard end - first == digits, bytes[first..<end].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
        return nil
    }
    return bytes[first..<end]
}

/// Checks a typed code against a device's codes within `window` steps either side of now.
///
/// Steps are tried from now outwards (now, -1, +1, -2, …) and the first fresh match is accepted, so
/// the usual login, typed within its step, costs one HMAC. Each comparison is constant-time; a wrong
/// code costs every step in the window, so timing tells only a right code's typist which step it
/// matched, which they know. A match at or before `lastAcceptedStep` is a replay: a code is never
/// accepted twice, and once a newer code has been used an older one is refused too.
public func verifyTOTP<Input: Collection>(
    code input: Input, secret: [UInt8], parameters: OTPParameters,
    now: Int64, window: Int, lastAcceptedStep: Int64?
) -> CodeCheck where Input.Element == UInt8 {
    // The typed bytes in place (an Array or a slice of one, as every caller has): no copy.
    if let check = input.withContiguousStorageIfAvailable({
        verifyTOTP(code: $0, secret: secret, parameters: parameters, now: now, window: window, lastAcceptedStep: lastAcceptedStep)
    }) {
        return check
    }
    return Array(input).withUnsafeBufferPointer {
        verifyTOTP(code: $0, secret: secret, parameters: parameters, now: now, window: window, lastAcceptedStep: lastAcceptedStep)
    }
}

private func verifyTOTP(
    code input: UnsafeBufferPointer<UInt8>, secret: [UInt8], parameters: OTPParameters,
    now: Int64, window: Int, lastAcceptedStep: Int64?
) -> CodeCheck {
    guard let code = codeDigits(input, digits: parameters.digits) else { return .malformed }
    // At most 8 digits: the number fits, and comparing numbers is comparing the zero-padded digits.
    var typed: UInt32 = 0
    for digit in code { typed = typed &* 10 &+ UInt32(digit &- UInt8(ascii: "0")) }
    let generator = HOTPGenerator(secret: secret, algorithm: parameters.algorithm, digits: parameters.digits)
    let current = parameters.step(at: now)
    var matchedUsedStep = false
    for distance in 0...Int64(window) {
        for side in distance == 0 ? 1...1 : 0...1 {
            let step = side == 0 ? current - distance : current + distance
            guard constantTimeEqual(generator.value(counter: UInt64(bitPattern: step)), typed) else { continue }
            if lastAcceptedStep.map({ step > $0 }) ?? true { return .accepted(step: step) }
            matchedUsedStep = true
        }
    }
    return matchedUsedStep ? .replayed : .wrong
}
