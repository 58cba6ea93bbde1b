/// Compares two byte sequences in time that depends only on their lengths, never on where they differ.
/// Lengths are not secret here (a code's length is public), so differing lengths return early.
public func constantTimeEqual<A: Collection, B: Collection>(_ lhs: A, _ rhs: B) -> Bool
where A.Element == UInt8, B.Element == UInt8 {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
    return difference == 0
}

/// Equality of two numbers without a data-dependent branch: the difference is folded into its top bit.
public func constantTimeEqual(_ lhs: UInt32, _ rhs: UInt32) -> Bool {
    let difference = lhs ^ rhs
    return (difference | (0 &- difference)) >> 31 == 0
}
