/// Byte order of multi-byte values in a file.
public enum ByteOrder: Sendable, Equatable {
    case little, big
}

/// A cursor over bytes that never reads past its end: every read returns nil when the bytes run
/// out (the cursor does not move then). Offsets are relative to `base`, which callers set to the
/// position of these bytes in the file so that error messages can name file offsets.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    /// Position of `bytes[0]` in the enclosing file, for error messages.
    public let base: Int
    public private(set) var position: Int = 0

    public init(_ bytes: UnsafeRawBufferPointer, base: Int = 0) {
        self.bytes = bytes
        self.base = base
    }

    public var remaining: Int { bytes.count - position }
    public var isAtEnd: Bool { position >= bytes.count }
    /// The current position as an offset in the enclosing file.
    public var fileOffset: Int { base + position }

    public mutating func seek(to offset: Int) -> Bool {
        guard offset >= 0, offset <= bytes.count else { return false }
        position = offset
        return true
    }

    public mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, count <= remaining else { return false }
        position += count
        return true
    }

    public mutating func readUInt8() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readInteger<T: FixedWidthInteger>(_: T.Type = T.self, _ order: ByteOrder = .little) -> T? {
        let width = MemoryLayout<T>.size
        guard width <= remaining else { return nil }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[position..<position + width]))
        }
        position += width
        return order == .little ? T(littleEndian: value) : T(bigEndian: value)
    }

    /// A view of the next `count` bytes (no copy).
    public mutating func readBytes(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, count <= remaining else { return nil }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    /// The next `count` bytes decoded as UTF-8, or nil if they run out or are not valid UTF-8.
    public mutating func readUTF8(_ count: Int) -> String? {
        let start = position
        guard let raw = readBytes(count) else { return nil }
        guard let text = String(validating: raw, as: UTF8.self) else {
            position = start
            return nil
        }
        return text
    }
}

extension UnsafeRawBufferPointer {
    /// Reads a little-endian integer at `offset`, or nil if it does not fit.
    public func loadInteger<T: FixedWidthInteger>(_: T.Type = T.self, at offset: Int, _ order: ByteOrder = .little) -> T? {
        var reader = ByteReader(self)
        guard reader.seek(to: offset) else { return nil }
        return reader.readInteger(T.self, order)
    }
}

/// Multiplies sizes without overflowing: nil when the product does not fit in an Int or any
/// factor is negative. Used before every allocation whose size comes from a file.
public func checkedProduct(_ factors: some Sequence<Int>) -> Int? {
    var product = 1
    for factor in factors {
        guard factor >= 0 else { return nil }
        let (next, overflow) = product.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        product = next
    }
    return product
}
