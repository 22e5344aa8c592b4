import BEATsCore

/// A JSON value as ``JSONReader`` builds it. Integers without a fraction or exponent that fit an
/// `Int` stay exact (safetensors data offsets go past 2^53); other numbers are `Double`s.
/// Object members keep their file order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The member named `key` of an object (nil for other values or a missing key).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// What the value is, for error messages ("a string", "an array", …).
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a bool"
        case .integer, .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// One `"key": value` of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// Why a JSON text was refused, with the file offset of the offending byte.
public enum JSONError: Error, CustomStringConvertible, Equatable, Sendable {
    case syntax(offset: Int, reason: String)
    /// An object names the same key twice (which one counts would be ambiguous).
    case duplicateKey(key: String, offset: Int)
    /// Arrays and objects nested deeper than ``JSONReader/Limits/maximumDepth``.
    case tooDeep(offset: Int, limit: Int)
    /// More values than ``JSONReader/Limits/maximumValues``.
    case tooManyValues(offset: Int, limit: Int)

    public var description: String {
        switch self {
        case .syntax(let offset, let reason): return "invalid JSON at offset \(offset): \(reason)"
        case .duplicateKey(let key, let offset): return "JSON key '\(key)' appears twice (second at offset \(offset))"
        case .tooDeep(let offset, let limit): return "JSON nested deeper than \(limit) levels at offset \(offset)"
        case .tooManyValues(let offset, let limit): return "JSON holds more than \(limit) values (at offset \(offset))"
        }
    }
}

/// A strict JSON reader (RFC 8259) for text from untrusted files: safetensors headers and the
/// `config.json` beside them. Iterative — nesting is an explicit stack bounded by
/// ``Limits/maximumDepth``, never the call stack — and every value counts against
/// ``Limits/maximumValues``, so memory stays linear in the text with a small constant. Refuses
/// duplicate keys, invalid UTF-8, unpaired surrogates, control characters in strings, leading
/// zeros, trailing commas and anything after the top-level value but whitespace.
public enum JSONReader {
    public struct Limits: Sendable, Equatable {
        /// Arrays and objects open at once.
        public var maximumDepth = 64
        /// Values of any kind in the text (a BEATs safetensors header has about 10 per tensor).
        public var maximumValues = 1 << 20
        public init(maximumDepth: Int = 64, maximumValues: Int = 1 << 20) {
            self.maximumDepth = maximumDepth
            self.maximumValues = maximumValues
        }
    }

    /// Parses `bytes`; `base` is their offset in the file, for error messages.
    public static func parse(_ bytes: UnsafeRawBufferPointer, base: Int = 0, limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        var parser = Parser(bytes: bytes, base: base, limits: limits)
        return try parser.document()
    }

    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(JSONError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(JSONError) in try parse(buffer, limits: limits) } }
        return try result.get()
    }

    private enum Container {
        case array([JSONValue])
        case object([JSONMember], keys: Set<String>, key: String)
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        let base: Int
        let limits: Limits
        var position = 0
        var values = 0

        init(bytes: UnsafeRawBufferPointer, base: Int, limits: Limits) {
            self.bytes = bytes
            self.base = base
            self.limits = limits
        }

        func fail(_ reason: String) -> JSONError { .syntax(offset: base + position, reason: reason) }

        mutating func skipSpace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func expect(_ byte: UInt8, _ what: String) throws(JSONError) {
            skipSpace()
            guard peek() == byte else { throw fail(peek() == nil ? "text ends, expected \(what)" : "expected \(what)") }
            position += 1
        }

        mutating func count() throws(JSONError) {
            values += 1
            guard values <= limits.maximumValues else { throw .tooManyValues(offset: base + position, limit: limits.maximumValues) }
        }

        /// The whole text: one value, then only whitespace.
        mutating func document() throws(JSONError) -> JSONValue {
            var stack: [Container] = []
            var finished: JSONValue?
            while true {
                // Parse one value: a scalar completes at once, `[` / `{` open a container.
                skipSpace()
                var value: JSONValue?
                switch peek() {
                case nil: throw fail("text ends, expected a value")
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    try count()
                    guard stack.count < limits.maximumDepth else { throw .tooDeep(offset: base + position, limit: limits.maximumDepth) }
                    let isArray = peek() == UInt8(ascii: "[")
                    position += 1
                    skipSpace()
                    if isArray {
                        if peek() == UInt8(ascii: "]") {
                            position += 1
                            value = .array([])
                        } else {
                            stack.append(.array([]))
                            continue
                        }
                    } else {
                        if peek() == UInt8(ascii: "}") {
                            position += 1
                            value = .object([])
                        } else {
                            let key = try memberKey(existing: [])
                            stack.append(.object([], keys: [key], key: key))
                            continue
                        }
                    }
                default:
                    try count()
                    value = try scalar()
                }
                // Hand the finished value to its container; close every container that ends here.
                guard var done = value else { continue }
                while true {
                    guard let top = stack.popLast() else {
                        finished = done
                        break
                    }
                    skipSpace()
                    switch top {
                    case .array(var elements):
                        elements.append(done)
                        if peek() == UInt8(ascii: ",") {
                            position += 1
                            stack.append(.array(elements))
                        } else if peek() == UInt8(ascii: "]") {
                            position += 1
                            done = .array(elements)
                            continue
                        } else {
                            throw fail(peek() == nil ? "text ends inside an array" : "expected ',' or ']' in an array")
                        }
                    case .object(var members, var keys, let key):
                        members.append(JSONMember(key: key, value: done))
                        if peek() == UInt8(ascii: ",") {
                            position += 1
                            let next = try memberKey(existing: keys)
                            keys.insert(next)
                            stack.append(.object(members, keys: keys, key: next))
                        } else if peek() == UInt8(ascii: "}") {
                            position += 1
                            done = .object(members)
                            continue
                        } else {
                            throw fail(peek() == nil ? "text ends inside an object" : "expected ',' or '}' in an object")
                        }
                    }
                    break
                }
                if let finished {
                    skipSpace()
                    guard position == bytes.count else { throw fail("unexpected bytes after the JSON value") }
                    return finished
                }
            }
        }

        /// `"key":` of an object member, refusing a key the object already has.
        mutating func memberKey(existing: Set<String>) throws(JSONError) -> String {
            skipSpace()
            let start = base + position
            guard peek() == UInt8(ascii: "\"") else { throw fail(peek() == nil ? "text ends, expected an object key" : "expected a string key") }
            let key = try string()
            guard !existing.contains(key) else { throw .duplicateKey(key: key, offset: start) }
            try expect(UInt8(ascii: ":"), "':' after an object key")
            return key
        }

        mutating func scalar() throws(JSONError) -> JSONValue {
            guard let byte = peek() else { throw fail("text ends, expected a value") }
            switch byte {
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw fail("unexpected byte 0x\(String(byte, radix: 16)) where a value should start")
            }
        }

        mutating func literal(_ word: String) throws(JSONError) {
            for expected in word.utf8 {
                guard peek() == expected else { throw fail("expected '\(word)'") }
                position += 1
            }
        }

        mutating func number() throws(JSONError) -> JSONValue {
            let start = position
            func digits(_ parser: inout Parser) -> Int {
                let from = parser.position
                while let byte = parser.peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { parser.position += 1 }
                return parser.position - from
            }
            if peek() == UInt8(ascii: "-") { position += 1 }
            let intStart = position
            let intDigits = digits(&self)
            guard intDigits > 0 else { throw fail("a number needs digits") }
            guard !(intDigits > 1 && bytes[intStart] == UInt8(ascii: "0")) else { throw fail("leading zero in a number") }
            var isInteger = true
            if peek() == UInt8(ascii: ".") {
                position += 1
                guard digits(&self) > 0 else { throw fail("a fraction needs digits") }
                isInteger = false
            }
            if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
                position += 1
                if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
                guard digits(&self) > 0 else { throw fail("an exponent needs digits") }
                isInteger = false
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if isInteger, let exact = Int(text) { return .integer(exact) }
            guard let value = Double(text) else { throw fail("number '\(text.prefix(40))' cannot be read") }
            return .number(value)
        }

        mutating func hex4() throws(JSONError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = peek() else { throw fail("text ends inside a \\u escape") }
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid hex digit in a \\u escape")
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }

        /// A string literal, the opening quote at `position`.
        mutating func string() throws(JSONError) -> String {
            position += 1
            var scalars = String.UnicodeScalarView()
            var runStart = position
            func flushRun(_ parser: Parser, into scalars: inout String.UnicodeScalarView) throws(JSONError) {
                guard parser.position > runStart else { return }
                let run = UnsafeRawBufferPointer(rebasing: parser.bytes[runStart..<parser.position])
                guard let text = String(validating: run, as: UTF8.self) else {
                    throw JSONError.syntax(offset: parser.base + runStart, reason: "string is not valid UTF-8")
                }
                scalars.append(contentsOf: text.unicodeScalars)
            }
            while true {
                guard let byte = peek() else { throw fail("text ends inside a string") }
                if byte == UInt8(ascii: "\"") {
                    try flushRun(self, into: &scalars)
                    position += 1
                    return String(scalars)
                }
                if byte < 0x20 { throw fail("control character 0x\(String(byte, radix: 16)) inside a string") }
                guard byte == UInt8(ascii: "\\") else {
                    position += 1
                    continue
                }
                try flushRun(self, into: &scalars)
                position += 1
                guard let escape = peek() else { throw fail("text ends inside an escape") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800..<0xDC00).contains(code) {
                        guard peek() == UInt8(ascii: "\\") else { throw fail("unpaired surrogate in a \\u escape") }
                        position += 1
                        guard peek() == UInt8(ascii: "u") else { throw fail("unpaired surrogate in a \\u escape") }
                        position += 1
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in a \\u escape") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("unpaired surrogate in a \\u escape") }
                    scalars.append(scalar)
                default:
                    throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))'")
                }
                runStart = position
            }
        }
    }
}
