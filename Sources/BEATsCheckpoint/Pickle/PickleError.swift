/// Where in the input a pickle error happened: the file offset of the opcode (or of the opcode
/// that made the offending value) and a free-form context such as the zip entry name.
public struct PickleLocation: Sendable, Equatable, CustomStringConvertible {
    /// Offset in the enclosing file (the `fileOffset` given to ``PickleMachine/load(_:fileOffset:context:limits:persistentLoad:)``
    /// plus the position inside the pickle).
    public var offset: Int
    /// What is being read, e.g. `archive/data.pkl`; empty when the caller gave none.
    public var context: String

    public init(offset: Int, context: String = "") {
        self.offset = offset
        self.context = context
    }

    public var description: String {
        context.isEmpty ? "at offset \(offset)" : "at offset \(offset) (\(context))"
    }
}

/// Why a pickle was refused. Every case says where (``PickleLocation``); descriptions read as
/// one line, e.g. `pickle: forbidden global 'posix.system' at offset 8258 (archive/data.pkl)`.
public enum PickleError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input ended inside an opcode's argument (`opcode`) or before any opcode (`nil`).
    case truncated(opcode: String?, at: PickleLocation)
    /// The input ended without a STOP opcode.
    case missingStop(at: PickleLocation)
    /// A byte that is no pickle opcode.
    case unknownOpcode(UInt8, at: PickleLocation)
    /// An opcode this data-only machine refuses (INST, OBJ, EXT1/2/4, NEXT_BUFFER): each either
    /// calls arbitrary classes or needs state outside the file.
    case unsupportedOpcode(String, at: PickleLocation)
    /// PROTO with a protocol above 5.
    case unsupportedProtocol(Int, at: PickleLocation)
    /// GLOBAL or STACK_GLOBAL naming anything outside the allowlist (``PickleGlobal``); nothing
    /// after it runs.
    case forbiddenGlobal(String, at: PickleLocation)
    /// REDUCE/NEWOBJ on an allowed global that data never calls (a storage class, a dtype), or
    /// called with arguments it does not take.
    case forbiddenCall(String, reason: String, at: PickleLocation)
    /// An opcode needed more values than the stack holds above the last MARK.
    case stackUnderflow(opcode: String, at: PickleLocation)
    /// An opcode that collects items up to a MARK found none.
    case missingMark(opcode: String, at: PickleLocation)
    /// A ``PickleLimits`` bound was reached; `limit` names it, `value` is its setting.
    case limitExceeded(limit: String, value: Int, at: PickleLocation)
    /// GET/BINGET/LONG_BINGET of a key nothing was stored under.
    case unknownMemoKey(Int, opcode: String, at: PickleLocation)
    /// An opcode found a value of the wrong type, e.g. SETITEM on a list.
    case wrongType(opcode: String, expected: String, found: String, at: PickleLocation)
    /// An opcode's argument is malformed (bad UTF-8, a negative length, an unparsable number).
    case invalidArgument(opcode: String, reason: String, at: PickleLocation)
    /// A tensor rebuild call with arguments that do not describe a tensor.
    case invalidTensor(String, at: PickleLocation)
    /// A persistent id that is not torch's storage tuple.
    case invalidPersistentID(String, at: PickleLocation)
    /// The loaded data does not have the shape a reader asked for (e.g. a `label_dict` key that
    /// is not an int); `at` is where the offending value was made.
    case unexpectedData(String, at: PickleLocation)

    public var location: PickleLocation {
        switch self {
        case .truncated(_, let at), .missingStop(let at), .unknownOpcode(_, let at), .unsupportedOpcode(_, let at),
             .unsupportedProtocol(_, let at), .forbiddenGlobal(_, let at), .forbiddenCall(_, _, let at),
             .stackUnderflow(_, let at), .missingMark(_, let at), .limitExceeded(_, _, let at),
             .unknownMemoKey(_, _, let at), .wrongType(_, _, _, let at), .invalidArgument(_, _, let at),
             .invalidTensor(_, let at), .invalidPersistentID(_, let at), .unexpectedData(_, let at):
            return at
        }
    }

    public var description: String {
        switch self {
        case .truncated(let opcode, let at):
            if let opcode { return "pickle: truncated inside \(opcode) \(at)" }
            return "pickle: truncated \(at)"
        case .missingStop(let at):
            return "pickle: input ends without STOP \(at)"
        case .unknownOpcode(let byte, let at):
            return "pickle: unknown opcode 0x\(String(byte, radix: 16, uppercase: false).leftPadded(to: 2)) \(at)"
        case .unsupportedOpcode(let name, let at):
            return "pickle: opcode \(name) is not allowed in a data-only pickle \(at)"
        case .unsupportedProtocol(let proto, let at):
            return "pickle: unsupported protocol \(proto) \(at)"
        case .forbiddenGlobal(let name, let at):
            return "pickle: forbidden global '\(name)' \(at)"
        case .forbiddenCall(let name, let reason, let at):
            return "pickle: refusing to call '\(name)': \(reason) \(at)"
        case .stackUnderflow(let opcode, let at):
            return "pickle: stack underflow in \(opcode) \(at)"
        case .missingMark(let opcode, let at):
            return "pickle: \(opcode) without a MARK \(at)"
        case .limitExceeded(let limit, let value, let at):
            return "pickle: \(limit) limit (\(value)) exceeded \(at)"
        case .unknownMemoKey(let key, let opcode, let at):
            return "pickle: \(opcode) of memo key \(key), which was never stored, \(at)"
        case .wrongType(let opcode, let expected, let found, let at):
            return "pickle: \(opcode) expects \(expected), found \(found) \(at)"
        case .invalidArgument(let opcode, let reason, let at):
            return "pickle: \(opcode): \(reason) \(at)"
        case .invalidTensor(let reason, let at):
            return "pickle: invalid tensor: \(reason) \(at)"
        case .invalidPersistentID(let reason, let at):
            return "pickle: invalid persistent id: \(reason) \(at)"
        case .unexpectedData(let reason, let at):
            return "pickle: \(reason) \(at)"
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
