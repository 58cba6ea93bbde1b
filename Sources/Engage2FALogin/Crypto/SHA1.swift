/// SHA-1 (FIPS 180-4 §6.1). Still what RFC 4226/6238 and nearly every authenticator app use for TOTP,
/// where only HMAC's pseudo-randomness matters, not collision resistance.
public enum SHA1Compression: BlockCompression {
    public static let blockSize = 64
    public static let digestSize = 20
    public static let lengthFieldSize = 8
    public static let initialState = SIMD8<UInt32>(0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0, 0, 0, 0)

    public static func compress(_ state: inout SIMD8<UInt32>, block: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { schedule in
            let w = schedule.baseAddress!
            for t in 0..<16 { w[t] = loadBigEndian32(block, t * 4) }
            for t in 16..<80 { w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotatedLeft(1) }
            var a = state[0], b = state[1], c = state[2], d = state[3], e = state[4]
            // One loop per round function: a switch inside one loop costs a third of the time.
            for t in 0..<20 {
                let temp = a.rotatedLeft(5) &+ ((b & c) | (~b & d)) &+ e &+ 0x5A82_7999 &+ w[t]
                e = d; d = c; c = b.rotatedLeft(30); b = a; a = temp
            }
            for t in 20..<40 {
                let temp = a.rotatedLeft(5) &+ (b ^ c ^ d) &+ e &+ 0x6ED9_EBA1 &+ w[t]
                e = d; d = c; c = b.rotatedLeft(30); b = a; a = temp
            }
            for t in 40..<60 {
                let temp = a.rotatedLeft(5) &+ ((b & c) | (b & d) | (c & d)) &+ e &+ 0x8F1B_BCDC &+ w[t]
                e = d; d = c; c = b.rotatedLeft(30); b = a; a = temp
            }
            for t in 60..<80 {
                let temp = a.rotatedLeft(5) &+ (b ^ c ^ d) &+ e &+ 0xCA62_C1D6 &+ w[t]
                e = d; d = c; c = b.rotatedLeft(30); b = a; a = temp
            }
            state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d; state[4] &+= e
        }
    }

    public static func store(_ state: SIMD8<UInt32>, to digest: UnsafeMutableRawPointer) {
        for index in 0..<5 { storeBigEndian(state[index], digest, index * 4) }
    }
}

public typealias SHA1 = MerkleDamgardHasher<SHA1Compression>

extension FixedWidthInteger where Self: UnsignedInteger {
    // Masking shifts: the counts are constants below the width, and the checking `<<` adds branches.
    @inline(__always)
    func rotatedLeft(_ count: Int) -> Self { (self &<< count) | (self &>> (Self.bitWidth - count)) }
    @inline(__always)
    func rotatedRight(_ count: Int) -> Self { (self &>> count) | (self &<< (Self.bitWidth - count)) }
}
