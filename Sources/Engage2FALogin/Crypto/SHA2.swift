/// The rounds of SHA-256 and SHA-512 (FIPS 180-4 §6.2, §6.4), written once for both word sizes: they
/// differ only in the word, the rotation counts and the round constants.
protocol SHA2Compression: BlockCompression where State == SIMD8<Word> {
    associatedtype Word: FixedWidthInteger & UnsignedInteger & SIMDScalar
    /// The rotations of Σ0, Σ1 and σ0, σ1 (whose third term is a shift).
    static var sigma: (big0: (Int, Int, Int), big1: (Int, Int, Int), small0: (Int, Int, Int), small1: (Int, Int, Int)) { get }
    static var roundConstants: [Word] { get }
}

extension SHA2Compression {
    public static func compress(_ state: inout SIMD8<Word>, block: UnsafeRawPointer) {
        roundConstants.withUnsafeBufferPointer { constants in
            let rounds = constants.count
            withUnsafeTemporaryAllocation(of: Word.self, capacity: rounds) { schedule in
                let w = schedule.baseAddress!, k = constants.baseAddress!
                let (big0, big1, small0, small1) = sigma
                for t in 0..<16 { w[t] = loadBigEndian(block, t) }
                for t in 16..<rounds {
                    let s0 = w[t - 15].rotatedRight(small0.0) ^ w[t - 15].rotatedRight(small0.1) ^ (w[t - 15] &>> small0.2)
                    let s1 = w[t - 2].rotatedRight(small1.0) ^ w[t - 2].rotatedRight(small1.1) ^ (w[t - 2] &>> small1.2)
                    w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                }
                // Σ(x) = ROTR^r0(x) ^ ROTR^r1(x) ^ ROTR^r2(x), as ROTR^r0(ROTR^(r1-r0)(ROTR^(r2-r1)(x) ^ x) ^ x): three
                // rotations and two xors with no copies of x kept aside (a quarter fewer instructions a round).
                @inline(__always)
                func bigSigma(_ x: Word, _ r: (Int, Int, Int)) -> Word {
                    ((x.rotatedRight(r.2 - r.1) ^ x).rotatedRight(r.1 - r.0) ^ x).rotatedRight(r.0)
                }
                // d gains T1 and h becomes T1 + T2; the letters are renamed each round instead of moved.
                @inline(__always)
                func round(_ a: Word, _ b: Word, _ c: Word, _ d: inout Word, _ e: Word, _ f: Word, _ g: Word, _ h: inout Word, _ t: Int) {
                    let t1 = h &+ bigSigma(e, big1) &+ (g ^ (e & (f ^ g))) &+ k[t] &+ w[t]
                    d &+= t1
                    h = t1 &+ bigSigma(a, big0) &+ ((a & b) | (c & (a | b)))
                }
                var a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7]
                var t = 0
                while t < rounds {
                    round(a, b, c, &d, e, f, g, &h, t)
                    round(h, a, b, &c, d, e, f, &g, t + 1)
                    round(g, h, a, &b, c, d, e, &f, t + 2)
                    round(f, g, h, &a, b, c, d, &e, t + 3)
                    round(e, f, g, &h, a, b, c, &d, t + 4)
                    round(d, e, f, &g, h, a, b, &c, t + 5)
                    round(c, d, e, &f, g, h, a, &b, t + 6)
                    round(b, c, d, &e, f, g, h, &a, t + 7)
                    t += 8
                }
                state &+= SIMD8(a, b, c, d, e, f, g, h)
            }
        }
    }

    public static func store(_ state: SIMD8<Word>, to digest: UnsafeMutableRawPointer) {
        for index in 0..<8 { storeBigEndian(state[index], digest, index * (Word.bitWidth / 8)) }
    }
}

/// SHA-256 (FIPS 180-4 §6.2).
public enum SHA256Compression: SHA2Compression {
    public static let blockSize = 64
    public static let digestSize = 32
    public static let lengthFieldSize = 8
    public static let initialState = SIMD8<UInt32>(
        0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19)
    static var sigma: (big0: (Int, Int, Int), big1: (Int, Int, Int), small0: (Int, Int, Int), small1: (Int, Int, Int)) {
        ((2, 13, 22), (6, 11, 25), (7, 18, 3), (17, 19, 10))
    }

    static let roundConstants: [UInt32] = [
        0x428A_2F98, 0x7137_4491, 0xB5C0_FBCF, 0xE9B5_DBA5, 0x3956_C25B, 0x59F1_11F1, 0x923F_82A4, 0xAB1C_5ED5,
        0xD807_AA98, 0x1283_5B01, 0x2431_85BE, 0x550C_7DC3, 0x72BE_5D74, 0x80DE_B1FE, 0x9BDC_06A7, 0xC19B_F174,
        0xE49B_69C1, 0xEFBE_4786, 0x0FC1_9DC6, 0x240C_A1CC, 0x2DE9_2C6F, 0x4A74_84AA, 0x5CB0_A9DC, 0x76F9_88DA,
        0x983E_5152, 0xA831_C66D, 0xB003_27C8, 0xBF59_7FC7, 0xC6E0_0BF3, 0xD5A7_9147, 0x06CA_6351, 0x1429_2967,
        0x27B7_0A85, 0x2E1B_2138, 0x4D2C_6DFC, 0x5338_0D13, 0x650A_7354, 0x766A_0ABB, 0x81C2_C92E, 0x9272_2C85,
        0xA2BF_E8A1, 0xA81A_664B, 0xC24B_8B70, 0xC76C_51A3, 0xD192_E819, 0xD699_0624, 0xF40E_3585, 0x106A_A070,
        0x19A4_C116, 0x1E37_6C08, 0x2748_774C, 0x34B0_BCB5, 0x391C_0CB3, 0x4ED8_AA4A, 0x5B9C_CA4F, 0x682E_6FF3,
        0x748F_82EE, 0x78A5_636F, 0x84C8_7814, 0x8CC7_0208, 0x90BE_FFFA, 0xA450_6CEB, 0xBEF9_A3F7, 0xC671_78F2,
    ]
}

/// SHA-512 (FIPS 180-4 §6.4).
public enum SHA512Compression: SHA2Compression {
    public static let blockSize = 128
    public static let digestSize = 64
    public static let lengthFieldSize = 16
    public static let initialState = SIMD8<UInt64>(
        0x6A09_E667_F3BC_C908, 0xBB67_AE85_84CA_A73B, 0x3C6E_F372_FE94_F82B, 0xA54F_F53A_5F1D_36F1,
        0x510E_527F_ADE6_82D1, 0x9B05_688C_2B3E_6C1F, 0x1F83_D9AB_FB41_BD6B, 0x5BE0_CD19_137E_2179)
    static var sigma: (big0: (Int, Int, Int), big1: (Int, Int, Int), small0: (Int, Int, Int), small1: (Int, Int, Int)) {
        ((28, 34, 39), (14, 18, 41), (1, 8, 7), (19, 61, 6))
    }

    static let roundConstants: [UInt64] = [
        0x428A_2F98_D728_AE22, 0x7137_4491_23EF_65CD, 0xB5C0_FBCF_EC4D_3B2F, 0xE9B5_DBA5_8189_DBBC,
        0x3956_C25B_F348_B538, 0x59F1_11F1_B605_D019, 0x923F_82A4_AF19_4F9B, 0xAB1C_5ED5_DA6D_8118,
        0xD807_AA98_A303_0242, 0x1283_5B01_4570_6FBE, 0x2431_85BE_4EE4_B28C, 0x550C_7DC3_D5FF_B4E2,
        0x72BE_5D74_F27B_896F, 0x80DE_B1FE_3B16_96B1, 0x9BDC_06A7_25C7_1235, 0xC19B_F174_CF69_2694,
        0xE49B_69C1_9EF1_4AD2, 0xEFBE_4786_384F_25E3, 0x0FC1_9DC6_8B8C_D5B5, 0x240C_A1CC_77AC_9C65,
        0x2DE9_2C6F_592B_0275, 0x4A74_84AA_6EA6_E483, 0x5CB0_A9DC_BD41_FBD4, 0x76F9_88DA_8311_53B5,
        0x983E_5152_EE66_DFAB, 0xA831_C66D_2DB4_3210, 0xB003_27C8_98FB_213F, 0xBF59_7FC7_BEEF_0EE4,
        0xC6E0_0BF3_3DA8_8FC2, 0xD5A7_9147_930A_A725, 0x06CA_6351_E003_826F, 0x1429_2967_0A0E_6E70,
        0x27B7_0A85_46D2_2FFC, 0x2E1B_2138_5C26_C926, 0x4D2C_6DFC_5AC4_2AED, 0x5338_0D13_9D95_B3DF,
        0x650A_7354_8BAF_63DE, 0x766A_0ABB_3C77_B2A8, 0x81C2_C92E_47ED_AEE6, 0x9272_2C85_1482_353B,
        0xA2BF_E8A1_4CF1_0364, 0xA81A_664B_BC42_3001, 0xC24B_8B70_D0F8_9791, 0xC76C_51A3_0654_BE30,
        0xD192_E819_D6EF_5218, 0xD699_0624_5565_A910, 0xF40E_3585_5771_202A, 0x106A_A070_32BB_D1B8,
        0x19A4_C116_B8D2_D0C8, 0x1E37_6C08_5141_AB53, 0x2748_774C_DF8E_EB99, 0x34B0_BCB5_E19B_48A8,
        0x391C_0CB3_C5C9_5A63, 0x4ED8_AA4A_E341_8ACB, 0x5B9C_CA4F_7763_E373, 0x682E_6FF3_D6B2_B8A3,
        0x748F_82EE_5DEF_B2FC, 0x78A5_636F_4317_2F60, 0x84C8_7814_A1F0_AB72, 0x8CC7_0208_1A64_39EC,
        0x90BE_FFFA_2363_1E28, 0xA450_6CEB_DE82_BDE9, 0xBEF9_A3F7_B2C6_7915, 0xC671_78F2_E372_532B,
        0xCA27_3ECE_EA26_619C, 0xD186_B8C7_21C0_C207, 0xEADA_7DD6_CDE0_EB1E, 0xF57D_4F7F_EE6E_D178,
        0x06F0_67AA_7217_6FBA, 0x0A63_7DC5_A2C8_98A6, 0x113F_9804_BEF9_0DAE, 0x1B71_0B35_131C_471B,
        0x28DB_77F5_2304_7D84, 0x32CA_AB7B_40C7_2493, 0x3C9E_BE0A_15C9_BEBC, 0x431D_67C4_9C10_0D4C,
        0x4CC5_D4BE_CB3E_42B6, 0x597F_299C_FC65_7E2A, 0x5FCB_6FAB_3AD6_FAEC, 0x6C44_198C_4A47_5817,
    ]
}

public typealias SHA256 = MerkleDamgardHasher<SHA256Compression>
public typealias SHA512 = MerkleDamgardHasher<SHA512Compression>
