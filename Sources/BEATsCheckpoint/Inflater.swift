import CZlib

/// Why raw DEFLATE data could not be inflated into its destination.
public enum InflateError: Error, Equatable, Sendable {
    /// `inflateInit2` refused to start (zlib's return code), e.g. out of memory.
    case initialisationFailed(code: Int32)
    /// zlib found invalid DEFLATE data; `inputOffset` is how far into the compressed bytes it got.
    case corrupt(message: String, inputOffset: Int)
    /// The stream holds more output than the destination can take (a zip bomb or a lying header).
    case outputBeyondCapacity(capacity: Int)
    /// The compressed bytes ended before the DEFLATE stream did.
    case truncatedInput(produced: Int)
    /// The stream ended before filling the destination (the declared size was too large).
    case outputShort(produced: Int, expected: Int)
}

/// The one typed layer over zlib: raw DEFLATE inflation (`inflateInit2_` with window bits -15,
/// `inflate`, `inflateEnd`) and CRC-32 (`crc32`). Nothing else in the package touches CZlib.
public enum Inflater {
    /// zlib counts in `uInt` (32 bits); bigger buffers are fed in pieces of this size.
    private static let chunk = 1 << 30

    /// Inflates the raw DEFLATE stream in `source` into `destination`, which must come out exactly
    /// full: a stream that would write one byte more is ``InflateError/outputBeyondCapacity(capacity:)``
    /// (nothing is written past the end), one that stops early is ``InflateError/outputShort(produced:expected:)``.
    /// Bytes after the end of the DEFLATE stream in `source` are ignored, as zip readers do.
    public static func inflateRaw(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws(InflateError) {
        var stream = z_stream()
        let initCode = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard initCode == Z_OK else { throw .initialisationFailed(code: initCode) }
        defer { inflateEnd(&stream) }

        var consumed = 0
        var produced = 0
        // Once the destination is full, a one-byte probe tells whether the stream has more output.
        var probe: UInt8 = 0
        while true {
            let inputPiece = min(source.count - consumed, chunk)
            let destinationFull = produced == destination.count
            var written = 0
            let code: Int32 = withUnsafeMutablePointer(to: &probe) { probePointer in
                stream.next_in = inputPiece > 0
                    ? UnsafeMutablePointer(mutating: source.baseAddress!.advanced(by: consumed).assumingMemoryBound(to: UInt8.self))
                    : nil
                stream.avail_in = uInt(inputPiece)
                if destinationFull {
                    stream.next_out = probePointer
                    stream.avail_out = 1
                } else {
                    stream.next_out = destination.baseAddress!.advanced(by: produced).assumingMemoryBound(to: UInt8.self)
                    stream.avail_out = uInt(min(destination.count - produced, chunk))
                }
                let offeredOut = stream.avail_out
                let code = inflate(&stream, Z_NO_FLUSH)
                consumed += inputPiece - Int(stream.avail_in)
                written = Int(offeredOut - stream.avail_out)
                return code
            }
            if destinationFull, written > 0 { throw .outputBeyondCapacity(capacity: destination.count) }
            if !destinationFull { produced += written }
            switch code {
            case Z_STREAM_END:
                guard produced == destination.count else { throw .outputShort(produced: produced, expected: destination.count) }
                return
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress was possible: the compressed bytes ran out before the stream ended.
                throw .truncatedInput(produced: produced)
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(code)"
                throw .corrupt(message: message, inputOffset: consumed)
            }
        }
    }

    /// Deflates `source` into a raw DEFLATE stream (`deflateInit2_` with window bits -15). Used by
    /// tests and tools that need to build deflated entries; the reader never compresses.
    public static func deflateRaw(_ source: UnsafeRawBufferPointer, level: Int32 = 6) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return []
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(source.count)))
        var output = [UInt8](repeating: 0, count: bound)
        let produced: Int = output.withUnsafeMutableBytes { destination in
            stream.next_in = source.count > 0 ? UnsafeMutablePointer(mutating: source.baseAddress!.assumingMemoryBound(to: UInt8.self)) : nil
            stream.avail_in = uInt(source.count)
            stream.next_out = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
            stream.avail_out = uInt(bound)
            guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return -1 }
            return bound - Int(stream.avail_out)
        }
        guard produced >= 0 else { return [] }
        output.removeSubrange(produced...)
        return output
    }

    /// CRC-32 (the zip and gzip polynomial) of `bytes`, continuing from `initial`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt32 {
        var crc = uLong(initial)
        var offset = 0
        while offset < bytes.count {
            let piece = min(bytes.count - offset, chunk)
            crc = CZlib.crc32(crc, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(piece))
            offset += piece
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}
