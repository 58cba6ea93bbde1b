/// HMAC (RFC 2104) over any ``BlockCompression`` hash.
///
/// The keyed inner and outer states are computed once, so a value can be copied and reused
/// for many messages; PBKDF2 relies on that.
public struct HMAC<Compression: BlockCompression> {
    private var inner = MerkleDamgardHasher<Compression>()
    private var outer = MerkleDamgardHasher<Compression>()

    public init<Key: Collection>(key: Key) where Key.Element == UInt8 {
        let blockSize = Compression.blockSize
        var block = key.count > blockSize ? MerkleDamgardHasher<Compression>.hash(key) : Array(key)
        block.append(contentsOf: repeatElement(0, count: blockSize - block.count))
        inner.update(block.lazy.map { $0 ^ 0x36 })
        outer.update(block.lazy.map { $0 ^ 0x5C })
        for index in block.indices { block[index] = 0 }
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        inner.update(bytes)
    }

    public consuming func finalize() -> [UInt8] {
        let innerDigest = inner.finalize()
        outer.update(innerDigest)
        return outer.finalize()
    }

    public static func authenticationCode<Key: Collection, Message: Sequence>(
        key: Key, message: Message
    ) -> [UInt8] where Key.Element == UInt8, Message.Element == UInt8 {
        var mac = Self(key: key)
        mac.update(message)
        return mac.finalize()
    }
}

/// PBKDF2 (RFC 8018 §5.2) with HMAC as the pseudo-random function.
public enum PBKDF2<Compression: BlockCompression> {
    public static func deriveKey<Password: Collection, Salt: Collection>(
        password: Password, salt: Salt, iterations: Int, length: Int
    ) -> [UInt8] where Password.Element == UInt8, Salt.Element == UInt8 {
        precondition(iterations > 0 && length > 0, "PBKDF2 needs at least one iteration and one byte")
        let keyed = HMAC<Compression>(key: password)
        var derived: [UInt8] = []
        derived.reserveCapacity(length)
        var blockIndex: UInt32 = 1
        while derived.count < length {
            var mac = keyed
            mac.update(salt)
            withUnsafeBytes(of: blockIndex.bigEndian) { mac.update($0) }
            var u = mac.finalize()
            var t = u
            for _ in 1..<iterations {
                var next = keyed
                next.update(u)
                u = next.finalize()
                for index in t.indices { t[index] ^= u[index] }
            }
            derived.append(contentsOf: t.prefix(length - derived.count))
            blockIndex += 1
        }
        return derived
    }
}

/// HMAC keyed once, for messages that fit in one block with their padding (an HOTP counter): each
/// message then costs two compressions and no heap allocation, where ``HMAC`` costs four and several.
struct SingleBlockHMAC<Compression: BlockCompression> {
    private var inner = Compression.initialState
    private var outer = Compression.initialState

    init(key: [UInt8]) {
        let key = key.count > Compression.blockSize ? MerkleDamgardHasher<Compression>.hash(key) : key
        var block = HashBlock()
        block.withBytes { block in
            // The key, zero-padded to a block, then xor'd with the pads a word at a time.
            key.withUnsafeBytes { if let base = $0.baseAddress { block.copyMemory(from: base, byteCount: $0.count) } }
            let words = Compression.blockSize / 8
            for index in 0..<words { block.storeBytes(of: block.load(fromByteOffset: index * 8, as: UInt64.self) ^ 0x3636_3636_3636_3636, toByteOffset: index * 8, as: UInt64.self) }
            Compression.compress(&inner, block: block)
            for index in 0..<words { block.storeBytes(of: block.load(fromByteOffset: index * 8, as: UInt64.self) ^ (0x3636_3636_3636_3636 ^ 0x5C5C_5C5C_5C5C_5C5C), toByteOffset: index * 8, as: UInt64.self) }
            Compression.compress(&outer, block: block)
            block.initializeMemory(as: UInt8.self, repeating: 0, count: Compression.blockSize)
        }
    }

    /// Writes the `digestSize`-byte MAC of `message` (at most `blockSize - lengthFieldSize - 1` bytes).
    func authenticate(_ message: UnsafeRawBufferPointer, into digest: UnsafeMutableRawPointer) {
        let blockSize = Compression.blockSize
        precondition(message.count + 1 + Compression.lengthFieldSize <= blockSize)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: blockSize) { block in
            let raw = UnsafeMutableRawPointer(block.baseAddress!)
            raw.copyMemory(from: message.baseAddress!, byteCount: message.count)
            var state = inner
            Self.padAndCompress(&state, block: block, length: message.count)
            Compression.store(state, to: raw)
            state = outer
            Self.padAndCompress(&state, block: block, length: Compression.digestSize)
            Compression.store(state, to: digest)
        }
    }

    /// Pads the `length` bytes at the start of `block` as the final block of a message that follows
    /// one block of key, and compresses it.
    private static func padAndCompress(_ state: inout Compression.State, block: UnsafeMutableBufferPointer<UInt8>, length: Int) {
        let blockSize = Compression.blockSize
        block[length] = 0x80
        for index in (length + 1)..<(blockSize - 8) { block[index] = 0 }
        storeBigEndian(UInt64(blockSize + length) &* 8, UnsafeMutableRawPointer(block.baseAddress!), blockSize - 8)
        Compression.compress(&state, block: block.baseAddress!)
    }
}
