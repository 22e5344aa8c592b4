@testable import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Foundation

/// Writes pickle opcodes by hand, so each test states exactly the bytes it feeds the machine.
struct PickleBuilder {
    var bytes: [UInt8] = []

    init(protocol version: UInt8? = 2) {
        if let version { bytes = [PickleOpcode.proto.rawValue, version] }
    }

    mutating func op(_ opcode: PickleOpcode) { bytes.append(opcode.rawValue) }
    mutating func raw(_ more: [UInt8]) { bytes += more }
    mutating func raw(_ text: String) { bytes += Array(text.utf8) }
    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
    mutating func u32(_ value: UInt32) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
    mutating func i32(_ value: Int32) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }
    mutating func u64(_ value: UInt64) { bytes += withUnsafeBytes(of: value.littleEndian, Array.init) }

    /// BINUNICODE
    mutating func string(_ text: String) {
        op(.binUnicode)
        u32(UInt32(text.utf8.count))
        raw(text)
    }

    /// SHORT_BINUNICODE
    mutating func shortString(_ text: String) {
        op(.shortBinUnicode)
        u8(UInt8(text.utf8.count))
        raw(text)
    }

    /// The smallest binary int opcode, as Python's pickler picks it.
    mutating func int(_ value: Int) {
        if (0..<256).contains(value) {
            op(.binInt1); u8(UInt8(value))
        } else if (0..<65536).contains(value) {
            op(.binInt2); u16(UInt16(value))
        } else {
            op(.binInt); i32(Int32(value))
        }
    }

    mutating func global(_ module: String, _ name: String) {
        op(.global)
        raw("\(module)\n\(name)\n")
    }

    mutating func put(_ key: UInt8) { op(.binPut); u8(key) }
    mutating func get(_ key: UInt8) { op(.binGet); u8(key) }

    /// A tuple of ints: EMPTY_TUPLE, TUPLE1-3 or MARK … TUPLE.
    mutating func intTuple(_ values: [Int]) {
        switch values.count {
        case 0: op(.emptyTuple)
        case 1...3:
            values.forEach { int($0) }
            op([.tuple1, .tuple2, .tuple3][values.count - 1])
        default:
            op(.mark)
            values.forEach { int($0) }
            op(.tuple)
        }
    }

    /// torch's storage persistent id, then BINPERSID.
    mutating func storage(key: String, storageClass: String = "FloatStorage", location: String = "cpu", count: Int) {
        op(.mark)
        string("storage")
        global("torch", storageClass)
        string(key)
        string(location)
        int(count)
        op(.tuple)
        op(.binPersID)
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` exactly as torch.save writes it.
    mutating func tensor(key: String, storageClass: String = "FloatStorage", count: Int, offset: Int = 0,
                         shape: [Int], stride: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(.mark)
        storage(key: key, storageClass: storageClass, count: count)
        int(offset)
        intTuple(shape)
        intTuple(stride)
        op(.newFalse)
        global("collections", "OrderedDict")
        op(.emptyTuple)
        op(.reduce)
        op(.tuple)
        op(.reduce)
    }

    mutating func stop() { op(.stop) }

    func finished() -> [UInt8] { bytes + [PickleOpcode.stop.rawValue] }
}

enum PickleFixtures {
    /// The stored first entry (`…/data.pkl`) of a torch zip, found from its local header alone
    /// (torch writes the sizes in a data descriptor, so the bytes run to the end of the file and
    /// the machine stops at STOP). Returns the file and the entry's data offset.
    struct NotStoredZip: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path): the first entry is not a stored zip entry" }
    }

    static func torchZipPickle(_ relative: String) throws -> (file: [UInt8], dataOffset: Int) {
        let file = try Fixtures.bytes(relative)
        guard file.count >= 30, file[0..<4] == [0x50, 0x4B, 0x03, 0x04], file[8] == 0, file[9] == 0 else {
            throw NotStoredZip(path: relative)
        }
        let nameLength = Int(file[26]) | Int(file[27]) << 8
        let extraLength = Int(file[28]) | Int(file[29]) << 8
        return (file, 30 + nameLength + extraLength)
    }

    /// Loads the data.pkl of a torch zip with file offsets as in the file.
    static func loadTorchZip(_ relative: String, limits: PickleLimits = PickleLimits()) throws -> PickleObject {
        let (file, offset) = try torchZipPickle(relative)
        return try file.withUnsafeBytes { buffer in
            try PickleMachine.load(UnsafeRawBufferPointer(rebasing: buffer[offset...]), fileOffset: offset,
                                   context: "\(relative) data.pkl", limits: limits)
        }
    }

    struct ExpectedTensor: Decodable, Equatable {
        let name: String
        let key: String
        let dtype: String
        let location: String
        let numel: Int
        let offset: Int
        let shape: [Int]
        let stride: [Int]
        let requires_grad: Bool
        let is_parameter: Bool
    }

    /// A cfg value written as `[python type name, value]`.
    enum ExpectedScalar: Decodable, Equatable {
        case bool(Bool), int(Int), double(Double), string(String)
        init(from decoder: Decoder) throws {
            var container = try decoder.unkeyedContainer()
            switch try container.decode(String.self) {
            case "bool": self = .bool(try container.decode(Bool.self))
            case "int": self = .int(try container.decode(Int.self))
            case "float": self = .double(try container.decode(Double.self))
            default: self = .string(try container.decode(String.self))
            }
        }
        var config: ConfigScalar {
            switch self {
            case .bool(let value): .bool(value)
            case .int(let value): .int(value)
            case .double(let value): .double(value)
            case .string(let value): .string(value)
            }
        }
    }

    struct Expected: Decodable {
        let data_offset: Int
        let pickle_size: Int
        let tensors: [ExpectedTensor]
        let cfg: [String: ExpectedScalar]?
        let label_dict: [String: String]?
        let magic: String?
        let main_end: Int?
    }

    /// What Python's unpickler read from each fixture (tools/fixtures/make_pickle_vectors.py).
    static func expected() throws -> [String: Expected] {
        try JSONDecoder().decode([String: Expected].self, from: Data(Fixtures.bytes("pickle/expected.json")))
    }
}

extension PickleTensorEntry {
    /// The same fields as the Python expectation, for one comparison per tensor.
    var asExpected: PickleFixtures.ExpectedTensor {
        PickleFixtures.ExpectedTensor(
            name: name, key: tensor.storage.key, dtype: tensor.dtype.rawValue, location: tensor.storage.location,
            numel: tensor.storage.elementCount, offset: tensor.storageOffset, shape: tensor.shape, stride: tensor.stride,
            requires_grad: tensor.requiresGrad, is_parameter: tensor.isParameter)
    }
}

/// Runs `body` and returns the PickleError it throws (nil if it throws nothing or something else).
func pickleError(_ body: () throws -> Void) -> PickleError? {
    do {
        try body()
        return nil
    } catch let error as PickleError {
        return error
    } catch {
        return nil
    }
}
