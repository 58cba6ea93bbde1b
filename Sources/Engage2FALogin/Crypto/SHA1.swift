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
            for t in 0..<16 { w[t] = loadBigEndian(block, t) }
            for t in 16..<80 { w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotatedLeft(1) }
            var a = state[0], b = state[1], c = state[2], d = state[3], e = state[4]
            // Five rounds per pass, the letters renamed instead of moved; one loop per round function
            // (a switch inside one loop costs a third of the time).
            var t = 0
            while t < 20 {
                e &+= a.rotatedLeft(5) &+ (d ^ (b & (c ^ d))) &+ 0x5A82_7999 &+ w[t]; b = b.rotatedLeft(30)
                d &+= e.rotatedLeft(5) &+ (c ^ (a & (b ^ c))) &+ 0x5A82_7999 &+ w[t + 1]; a = a.rotatedLeft(30)
                c &+= d.rotatedLeft(5) &+ (b ^ (e & (a ^ b))) &+ 0x5A82_7999 &+ w[t + 2]; e = e.rotatedLeft(30)
                b &+= c.rotatedLeft(5) &+ (a ^ (d & (e ^ a))) &+ 0x5A82_7999 &+ w[t + 3]; d = d.rotatedLeft(30)
                a &+= b.rotatedLeft(5) &+ (e ^ (c & (d ^ e))) &+ 0x5A82_7999 &+ w[t + 4]; c = c.rotatedLeft(30)
                t += 5
            }
            while t < 40 {
                e &+= a.rotatedLeft(5) &+ (b ^ c ^ d) &+ 0x6ED9_EBA1 &+ w[t]; b = b.rotatedLeft(30)
                d &+= e.rotatedLeft(5) &+ (a ^ b ^ c) &+ 0x6ED9_EBA1 &+ w[t + 1]; a = a.rotatedLeft(30)
                c &+= d.rotatedLeft(5) &+ (e ^ a ^ b) &+ 0x6ED9_EBA1 &+ w[t + 2]; e = e.rotatedLeft(30)
                b &+= c.rotatedLeft(5) &+ (d ^ e ^ a) &+ 0x6ED9_EBA1 &+ w[t + 3]; d = d.rotatedLeft(30)
                a &+= b.rotatedLeft(5) &+ (c ^ d ^ e) &+ 0x6ED9_EBA1 &+ w[t + 4]; c = c.rotatedLeft(30)
                t += 5
            }
            while t < 60 {
                e &+= a.rotatedLeft(5) &+ ((b & c) | (d & (b | c))) &+ 0x8F1B_BCDC &+ w[t]; b = b.rotatedLeft(30)
                d &+= e.rotatedLeft(5) &+ ((a & b) | (c & (a | b))) &+ 0x8F1B_BCDC &+ w[t + 1]; a = a.rotatedLeft(30)
                c &+= d.rotatedLeft(5) &+ ((e & a) | (b & (e | a))) &+ 0x8F1B_BCDC &+ w[t + 2]; e = e.rotatedLeft(30)
                b &+= c.rotatedLeft(5) &+ ((d & e) | (a & (d | e))) &+ 0x8F1B_BCDC &+ w[t + 3]; d = d.rotatedLeft(30)
                a &+= b.rotatedLeft(5) &+ ((c & d) | (e & (c | d))) &+ 0x8F1B_BCDC &+ w[t + 4]; c = c.rotatedLeft(30)
                t += 5
            }
            while t < 80 {
                e &+= a.rotatedLeft(5) &+ (b ^ c ^ d) &+ 0xCA62_C1D6 &+ w[t]; b = b.rotatedLeft(30)
                d &+= e.rotatedLeft(5) &+ (a ^ b ^ c) &+ 0xCA62_C1D6 &+ w[t + 1]; a = a.rotatedLeft(30)
                c &+= d.rotatedLeft(5) &+ (e ^ a ^ b) &+ 0xCA62_C1D6 &+ w[t + 2]; e = e.rotatedLeft(30)
                b &+= c.rotatedLeft(5) &+ (d ^ e ^ a) &+ 0xCA62_C1D6 &+ w[t + 3]; d = d.rotatedLeft(30)
                a &+= b.rotatedLeft(5) &+ (c ^ d ^ e) &+ 0xCA62_C1D6 &+ w[t + 4]; c = c.rotatedLeft(30)
                t += 5
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

/// The big-endian word at word index `index` of `block`.
@inline(__always)
func loadBigEndian<Word: FixedWidthInteger>(_ block: UnsafeRawPointer, _ index: Int) -> Word {
    Word(bigEndian: block.loadUnaligned(fromByteOffset: index &* (Word.bitWidth / 8), as: Word.self))
}
