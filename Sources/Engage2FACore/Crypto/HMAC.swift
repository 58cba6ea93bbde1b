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
            mac.update(bigEndianBytes(CollectionOfOne(blockIndex)))
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
