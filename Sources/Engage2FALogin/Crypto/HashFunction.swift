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

extension BlockCompression {
    static func digest(of state: State) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: digestSize) { buffer, count in
            store(state, to: buffer.baseAddress!)
            count = digestSize
        }
    }
}

/// Incremental hashing over a ``BlockCompression``: buffers partial blocks and pads at the end.
public struct MerkleDamgardHasher<Compression: BlockCompression> {
    private var state: Compression.State
    private var pending: [UInt8]
    private var totalBytes: UInt64 = 0

    public init() {
        state = Compression.initialState
        pending = []
        pending.reserveCapacity(Compression.blockSize)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var next = bytes.baseAddress, !bytes.isEmpty else { return }
        var remaining = bytes.count
        totalBytes &+= UInt64(remaining)
        let blockSize = Compression.blockSize
        if !pending.isEmpty {
            let take = min(blockSize - pending.count, remaining)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: next, count: take))
            next += take
            remaining -= take
            guard pending.count == blockSize else { return }
            pending.withUnsafeBytes { Compression.compress(&state, block: $0.baseAddress!) }
            pending.removeAll(keepingCapacity: true)
        }
        while remaining >= blockSize {
            Compression.compress(&state, block: next)
            next += blockSize
            remaining -= blockSize
        }
        if remaining > 0 {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: next, count: remaining))
        }
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        let copy = Array(bytes)
        copy.withUnsafeBytes { update($0) }
    }

    public consuming func finalize() -> [UInt8] {
        let bitLength = totalBytes &* 8
        let blockSize = Compression.blockSize
        var tail = pending
        tail.append(0x80)
        let lengthField = Compression.lengthFieldSize
        while (tail.count + lengthField) % blockSize != 0 { tail.append(0) }
        // Lengths above 2^64 bits never occur here; the high bytes of SHA-512's field stay zero.
        tail.append(contentsOf: repeatElement(0, count: lengthField - 8))
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        tail.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                Compression.compress(&state, block: raw.baseAddress! + offset)
                offset += blockSize
            }
        }
        return Compression.digest(of: state)
    }

    /// The digest of one message.
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var hasher = Self()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

@inline(__always)
func loadBigEndian32(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(bigEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inline(__always)
func loadBigEndian64(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 {
    UInt64(bigEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

@inline(__always)
func storeBigEndian<Word: FixedWidthInteger>(_ word: Word, _ pointer: UnsafeMutableRawPointer, _ offset: Int) {
    pointer.storeBytes(of: word.bigEndian, toByteOffset: offset, as: Word.self)
}

func bigEndianBytes<Lane: FixedWidthInteger>(_ words: some Sequence<Lane>) -> [UInt8] {
    var out: [UInt8] = []
    for word in words {
        withUnsafeBytes(of: word.bigEndian) { out.append(contentsOf: $0) }
    }
    return out
}
