import COpenSSL
import XCTest

@testable import Engage2FALogin
@testable import Engage2FAManagement

/// Our SHA/HMAC/PBKDF2 against published vectors and against libcrypto on random inputs.
final class CryptoTests: XCTestCase {
    // FIPS 180-4 examples (NIST CSRC "Examples with intermediate values").
    func testSHAPublishedVectors() {
        let abc = bytes("abc")
        let empty = [UInt8]()
        let twoBlock = bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        let twoBlock512 = bytes("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")
        XCTAssertEqual(hex(SHA1.hash(abc)), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(hex(SHA1.hash(empty)), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(hex(SHA1.hash(twoBlock)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        XCTAssertEqual(hex(SHA256.hash(abc)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash(empty)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex(SHA256.hash(twoBlock)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            hex(SHA512.hash(abc)),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        XCTAssertEqual(
            hex(SHA512.hash(twoBlock512)),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(hex(SHA1.hash(million)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
        XCTAssertEqual(hex(SHA256.hash(million)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    // RFC 2202 (HMAC-SHA-1) and RFC 4231 (HMAC-SHA-256/512) test cases.
    func testHMACPublishedVectors() {
        let key1 = [UInt8](repeating: 0x0B, count: 20)
        XCTAssertEqual(hex(HMAC<SHA1Compression>.authenticationCode(key: key1, message: bytes("Hi There"))), "b617318655057264e28bc0b6fb378c8ef146be00")
        XCTAssertEqual(
            hex(HMAC<SHA1Compression>.authenticationCode(key: bytes("Jefe"), message: bytes("what do ya want for nothing?"))),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        XCTAssertEqual(
            hex(HMAC<SHA1Compression>.authenticationCode(
                key: [UInt8](repeating: 0xAA, count: 80), message: bytes("Test Using Larger Than Block-Size Key - Hash Key First"))),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112")
        XCTAssertEqual(
            hex(HMAC<SHA256Compression>.authenticationCode(key: key1, message: bytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        XCTAssertEqual(
            hex(HMAC<SHA512Compression>.authenticationCode(key: key1, message: bytes("Hi There"))),
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854")
        XCTAssertEqual(
            hex(HMAC<SHA256Compression>.authenticationCode(key: bytes("Jefe"), message: bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let longKey = [UInt8](repeating: 0xAA, count: 131)
        let longKeyMessage = bytes("Test Using Larger Than Block-Size Key - Hash Key First")
        XCTAssertEqual(
            hex(HMAC<SHA256Compression>.authenticationCode(key: longKey, message: longKeyMessage)),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        XCTAssertEqual(
            hex(HMAC<SHA512Compression>.authenticationCode(key: longKey, message: longKeyMessage)),
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598")
    }

    // RFC 6070 (PBKDF2-HMAC-SHA1) and the widely published PBKDF2-HMAC-SHA256 vectors.
    func testPBKDF2PublishedVectors() {
        XCTAssertEqual(hex(PBKDF2<SHA1Compression>.deriveKey(password: bytes("password"), salt: bytes("salt"), iterations: 1, length: 20)),
                       "0c60c80f961f0e71f3a9b524af6012062fe037a6")
        XCTAssertEqual(hex(PBKDF2<SHA1Compression>.deriveKey(password: bytes("password"), salt: bytes("salt"), iterations: 2, length: 20)),
                       "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957")
        XCTAssertEqual(hex(PBKDF2<SHA1Compression>.deriveKey(password: bytes("password"), salt: bytes("salt"), iterations: 4096, length: 20)),
                       "4b007901b765489abead49d926f721d065a429c1")
        XCTAssertEqual(
            hex(PBKDF2<SHA1Compression>.deriveKey(
                password: bytes("passwordPASSWORDpassword"), salt: bytes("saltSALTsaltSALTsaltSALTsaltSALTsalt"), iterations: 4096, length: 25)),
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038")
        XCTAssertEqual(hex(PBKDF2<SHA1Compression>.deriveKey(password: bytes("pass\0word"), salt: bytes("sa\0lt"), iterations: 4096, length: 16)),
                       "56fa6aa75548099dcc37d7f03425e0c3")
        XCTAssertEqual(hex(PBKDF2<SHA256Compression>.deriveKey(password: bytes("password"), salt: bytes("salt"), iterations: 1, length: 32)),
                       "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
        XCTAssertEqual(hex(PBKDF2<SHA256Compression>.deriveKey(password: bytes("password"), salt: bytes("salt"), iterations: 4096, length: 32)),
                       "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
    }

    private func libcryptoDigest(_ name: String, _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length: UInt32 = 0
        let ok = message.withUnsafeBytes { input in
            EVP_Digest(input.baseAddress, input.count, &out, &length, EVP_get_digestbyname(name), nil)
        }
        XCTAssertEqual(ok, 1)
        return Array(out.prefix(Int(length)))
    }

    private func libcryptoHMAC(_ name: String, key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { input in
                _ = HMAC(EVP_get_digestbyname(name), keyBytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(key.count),
                         input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, &out, &length)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// Every message length 0–300, each hash, one-shot and fed in random pieces, and HMAC with a
    /// random key of random length 0–300 (below, at and above the block size), against libcrypto.
    func testAgainstLibcryptoOnRandomInputs() {
        var compared = 0
        for length in 0...300 {
            let message = randomBytes(length)
            let key = randomBytes(Int.random(in: 0...300))
            let split = Int.random(in: 0...length)
            for (name, ours, oursHMAC, pieces) in [
                ("SHA1", SHA1.hash(message), HMAC<SHA1Compression>.authenticationCode(key: key, message: message),
                 { () -> [UInt8] in var h = SHA1(); h.update(message[..<split]); h.update(message[split...]); return h.finalize() }()),
                ("SHA256", SHA256.hash(message), HMAC<SHA256Compression>.authenticationCode(key: key, message: message),
                 { () -> [UInt8] in var h = SHA256(); h.update(message[..<split]); h.update(message[split...]); return h.finalize() }()),
                ("SHA512", SHA512.hash(message), HMAC<SHA512Compression>.authenticationCode(key: key, message: message),
                 { () -> [UInt8] in var h = SHA512(); h.update(message[..<split]); h.update(message[split...]); return h.finalize() }()),
            ] {
                let reference = libcryptoDigest(name, message)
                XCTAssertEqual(ours, reference, "\(name) of \(length) bytes")
                XCTAssertEqual(pieces, reference, "\(name) of \(length) bytes split at \(split)")
                XCTAssertEqual(oursHMAC, libcryptoHMAC(name, key: key, message), "HMAC-\(name), key \(key.count), message \(length)")
                compared += 3
            }
        }
        XCTAssertEqual(compared, 301 * 9)
    }

    func testPBKDF2AgainstLibcrypto() {
        for round in 0..<40 {
            let password = randomBytes(Int.random(in: 0...100))
            let salt = randomBytes(Int.random(in: 0...64))
            let iterations = Int.random(in: 1...300)
            let length = Int.random(in: 1...100)
            var reference = [UInt8](repeating: 0, count: length)
            let ok = password.withUnsafeBytes { p in
                salt.withUnsafeBytes { s in
                    PKCS5_PBKDF2_HMAC(p.baseAddress?.assumingMemoryBound(to: CChar.self) ?? UnsafePointer(bitPattern: 1), Int32(password.count),
                                      s.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1), Int32(salt.count),
                                      Int32(iterations), round % 2 == 0 ? EVP_sha256() : EVP_sha1(), Int32(length), &reference)
                }
            }
            XCTAssertEqual(ok, 1)
            let ours = round % 2 == 0
                ? PBKDF2<SHA256Compression>.deriveKey(password: password, salt: salt, iterations: iterations, length: length)
                : PBKDF2<SHA1Compression>.deriveKey(password: password, salt: salt, iterations: iterations, length: length)
            XCTAssertEqual(ours, reference, "round \(round): \(iterations) iterations, \(length) bytes")
        }
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(constantTimeEqual(bytes("123456"), bytes("123456")))
        XCTAssertFalse(constantTimeEqual(bytes("123456"), bytes("123457")))
        XCTAssertFalse(constantTimeEqual(bytes("023456"), bytes("123456")))
        XCTAssertFalse(constantTimeEqual(bytes("12345"), bytes("123456")))
        XCTAssertTrue(constantTimeEqual([UInt8](), [UInt8]()))
    }

    func testSecureRandomBytesDiffer() throws {
        let first = try newSecret()
        let second = try newSecret()
        XCTAssertEqual(first.count, 20)
        XCTAssertNotEqual(first, second)
    }
}
