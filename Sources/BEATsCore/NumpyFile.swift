import Foundation

/// Errors reading a NumPy .npy file.
public enum NumpyFileError: Error, CustomStringConvertible, Equatable, Sendable {
    case badMagic
    case unsupportedVersion(UInt8)
    case truncatedHeader
    case malformedHeader(String)
    case unsupportedDescriptor(String)
    case fortranOrder
    case dataSizeMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .badMagic: return "not a .npy file (magic \\x93NUMPY missing at offset 0)"
        case .unsupportedVersion(let version): return ".npy version \(version) is not supported"
        case .truncatedHeader: return ".npy header runs past the end of the file"
        case .malformedHeader(let text): return "malformed .npy header: \(text)"
        case .unsupportedDescriptor(let descr): return ".npy dtype '\(descr)' is not supported"
        case .fortranOrder: return ".npy arrays in Fortran order are not supported"
        case .dataSizeMismatch(let expected, let actual): return ".npy data is \(actual) bytes, header implies \(expected)"
        }
    }
}

/// NumPy's .npy format (version 1.0 written; 1.0–3.0 read), little-endian C-order arrays.
public enum NumpyFile {
    /// The bytes of a .npy file holding `data` (packed little-endian elements) with `shape`.
    public static func encode(descriptor: String, shape: [Int], data: UnsafeRawBufferPointer) -> [UInt8] {
        let shapeText: String
        switch shape.count {
        case 0: shapeText = "()"
        case 1: shapeText = "(\(shape[0]),)"
        default: shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = "{'descr': '\(descriptor)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes += data
        return bytes
    }

    public static func encode(_ values: [Float], shape: [Int]) -> [UInt8] {
        values.withUnsafeBytes { encode(descriptor: "<f4", shape: shape, data: $0) }
    }

    public static func encode(_ values: [Int64], shape: [Int]) -> [UInt8] {
        values.withUnsafeBytes { encode(descriptor: "<i8", shape: shape, data: $0) }
    }

    /// Reads a .npy file into a tensor view over `storage` (no copy of the data).
    public static func decode(_ storage: ByteStorage, name: String = "npy") throws -> TensorView {
        var reader = ByteReader(storage.bytes)
        guard let magic = reader.readBytes(6), Array(magic) == [0x93] + Array("NUMPY".utf8) else { throw NumpyFileError.badMagic }
        guard let major = reader.readUInt8(), reader.readUInt8() != nil else { throw NumpyFileError.truncatedHeader }
        let headerLength: Int
        switch major {
        case 1:
            guard let length = reader.readInteger(UInt16.self) else { throw NumpyFileError.truncatedHeader }
            headerLength = Int(length)
        case 2, 3:
            guard let length = reader.readInteger(UInt32.self) else { throw NumpyFileError.truncatedHeader }
            headerLength = Int(length)
        default: throw NumpyFileError.unsupportedVersion(major)
        }
        guard let header = reader.readUTF8(headerLength) else { throw NumpyFileError.truncatedHeader }
        let descriptor = try field("descr", in: header).trimming( "'\" ")
        if try field("fortran_order", in: header).contains("True") { throw NumpyFileError.fortranOrder }
        let shapeText = try field("shape", in: header).trimming( "() ")
        var shape: [Int] = []
        for part in shapeText.split(separator: ",") {
            let trimmed = part.trimming( " ")
            if trimmed.isEmpty { continue }
            guard let size = Int(trimmed), size >= 0 else { throw NumpyFileError.malformedHeader(header) }
            shape.append(size)
        }
        guard let dtype = DType.allCases.first(where: { $0.numpyDescriptor == descriptor })
            ?? (descriptor == "<b1" ? .bool : descriptor == "<i1" ? .int8 : descriptor == "<u1" ? .uint8 : nil)
        else { throw NumpyFileError.unsupportedDescriptor(descriptor) }
        guard let expected = checkedProduct(shape + [dtype.byteWidth]) else { throw NumpyFileError.malformedHeader(header) }
        guard reader.remaining == expected else { throw NumpyFileError.dataSizeMismatch(expected: expected, actual: reader.remaining) }
        let dataStart = reader.position
        let data = ByteStorage(bytes: UnsafeRawBufferPointer(rebasing: storage.bytes[dataStart...]), owner: storage.owner)
        return try TensorView(name: name, dtype: dtype, shape: shape, storage: data)
    }

    /// Reads a .npy file from disk (memory-mapped).
    public static func read(path: String) throws -> TensorView {
        let file = try MappedFile(path: path)
        return try decode(file.storage(0..<file.count), name: path)
    }

    private static func field(_ key: String, in header: String) throws(NumpyFileError) -> String {
        guard let keyRange = header.range(of: "'\(key)':") else { throw .malformedHeader(header) }
        let rest = header[keyRange.upperBound...]
        if key == "shape" {
            guard let close = rest.firstIndex(of: ")") else { throw .malformedHeader(header) }
            return String(rest[..<rest.index(after: close)])
        }
        let end = rest.firstIndex(of: ",") ?? rest.firstIndex(of: "}") ?? rest.endIndex
        return String(rest[..<end])
    }
}

extension StringProtocol {
    func trimming(_ set: String) -> String {
        let characters = Set(set)
        var slice = Substring(String(self))
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
