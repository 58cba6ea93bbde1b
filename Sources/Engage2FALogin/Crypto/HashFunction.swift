// The hash functions TOTP and recovery codes need, in plain Swift so that the PAM module
// never loads libcrypto (about 560 KiB of private memory per sshd connection).
// None of them branches on, or indexes a table with, data derived from the message or key.

/// A compression function of the Merkle–Damgård family (SHA-1, SHA-2): fixed-size blocks,
/// big-endian message length in the final padding block.
public protocol BlockCompression {
    associatedtype State
    static var blockSize: Int { get }
    static var digestSize: Int { get }
    /// Bytes of the big-endian bit-length field at the end of the padding.
    static var lengthFieldSize: Int { get }
    static var initialState: State { get }
    static func compress(_ state: inout State, block: UnsafeRawPointer)
    /// Writes the digest's `digestSize` bytes (big-endian words of the state).
    static func store(_ state: State, to digest: UnsafeMutableRawPointer)
}

/// Room for one block of any of the hashes (128 bytes), held inline: a hasher allocates nothing.
struct HashBlock {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    mutating func withBytes<Result>(_ body: (UnsafeMutableRawPointer) -> Result) -> Result {
        withUnsafeMutableBytes(of: &words) { body($0.baseAddress!) }
    }
}

/// Incremental hashing over a ``BlockCompression``: buffers partial blocks and pads at the end.
public struct MerkleDamgardHasher<Compression: BlockCompression> {
    private var state: Compression.State
    private var pending = HashBlock()
    private var pendingCount = 0
    private var totalBytes: UInt64 = 0

    public init() {
        state = Compression.initialState
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var next = bytes.baseAddress, !bytes.isEmpty else { return }
        var remaining = bytes.count
        totalBytes &+= UInt64(remaining)
        let blockSize = Compression.blockSize
        // Worked on in locals: a closure over `self` would overlap the access to `pending`.
        var state = self.state, count = pendingCount
        pending.withBytes { block in
            if count > 0 {
                let take = min(blockSize - count, remaining)
                (block + count).copyMemory(from: next, byteCount: take)
                next += take
                remaining -= take
                count += take
                guard count == blockSize else { return }
                Compression.compress(&state, block: block)
                count = 0
            }
            while remaining >= blockSize {
                Compression.compress(&state, block: next)
                next += blockSize
                remaining -= blockSize
            }
            if remaining > 0 {
                block.copyMemory(from: next, byteCount: remaining)
                count = remaining
            }
        }
        self.state = state
        pendingCount = count
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        let copy = Array(bytes)
        copy.withUnsafeBytes { update($0) }
    }

    /// Pads, compresses the last block(s) and writes the `digestSize` bytes of the digest.
    public func finalize(into digest: UnsafeMutableRawPointer) {
        let bitLength = totalBytes &* 8
        let blockSize = Compression.blockSize, lengthField = Compression.lengthFieldSize
        var state = self.state, last = pending
        let count = pendingCount
        last.withBytes { block in
            block.storeBytes(of: 0x80, toByteOffset: count, as: UInt8.self)
            (block + count + 1).initializeMemory(as: UInt8.self, repeating: 0, count: blockSize - count - 1)
            if count + 1 > blockSize - lengthField {
                Compression.compress(&state, block: block)
                block.initializeMemory(as: UInt8.self, repeating: 0, count: blockSize)
            }
            // Lengths above 2^64 bits never occur here; the high bytes of SHA-512's field stay zero.
            storeBigEndian(bitLength, block, blockSize - 8)
            Compression.compress(&state, block: block)
        }
        Compression.store(state, to: digest)
    }

    public func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Compression.digestSize) { buffer, count in
            finalize(into: buffer.baseAddress!)
            count = Compression.digestSize
        }
    }

    /// The digest of one message.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = Self()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

@inline(__always)
func storeBigEndian<Word: FixedWidthInteger>(_ word: Word, _ pointer: UnsafeMutableRawPointer, _ offset: Int) {
    pointer.storeBytes(of: word.bigEndian, toByteOffset: offset, as: Word.self)
}
