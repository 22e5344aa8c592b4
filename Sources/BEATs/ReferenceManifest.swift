import BEATsCheckpoint
import BEATsCore
import BEATsFormat
import Foundation

/// A reference set's `manifest.json`: which checkpoint the official outputs came from, and per
/// clip which audio, which output file and which options (`Formats/REFERENCE-SET.md`).
///
/// The manifest is read as hostile input: a strict JSON reader with limits, every key checked
/// for presence and type, file names confined to the set's folder, and every refusal a
/// ``ReferenceManifestError`` naming the file and the key.
public struct ReferenceManifest: Sendable, Equatable {
    /// The checkpoint the references were made from.
    public struct Checkpoint: Sendable, Equatable {
        /// Its file name when the set was made (for messages).
        public var file: String
        /// SHA-256 of the checkpoint file, 32 bytes.
        public var sha256: [UInt8]
        /// What it is: pre-trained, fine-tuned or tokenizer.
        public var kind: ModelKind
        /// Its `cfg` (official defaults for keys it leaves out).
        public var config: BEATsConfig
    }

    /// One clip of the set.
    public struct Clip: Sendable, Equatable {
        /// Short name (unique in the set), e.g. "speech".
        public var name: String
        /// The audio file: the manifest's `audio` resolved against the set's folder.
        public var audioPath: String
        /// The `audio` value as written in the manifest.
        public var audio: String
        /// SHA-256 of the audio file when the set was made.
        public var audioSHA256: [UInt8]
        /// The official output (`.npy` in the set's folder).
        public var outputPath: String
        /// SHA-256 of the official output file.
        public var outputSHA256: [UInt8]
        /// Shape and dtype of the official output ("float32" or "int64").
        public var shape: [Int]
        /// Its dtype, "float32" or "int64".
        public var dtype: String
        /// The official code in float64 on the same weights and samples (float outputs).
        public var truthPath: String?
        /// SHA-256 of the truth file.
        public var truthSHA256: [UInt8]?
        /// The output asked for (`layer`, `frames`, `pool`) and windows (`window`, `hop`).
        public var request: OutputRequest
        /// Windows the output was cut into, if any.
        public var windowing: Windowing?
        /// How the reference decoded the audio: "wav" (torchaudio's scaling) or "soundfile".
        public var decode: String
    }

    /// Who made the set: versions of the tools (shown, not checked).
    public var producer: [String: String]
    /// The checkpoint the references were made from.
    public var checkpoint: Checkpoint
    /// The clips, in the order they are verified.
    public var clips: [Clip]
    /// The manifest's own path, for messages.
    public var path: String

    /// Largest manifest accepted (a set of thousands of clips is a few MB).
    public static let maximumBytes = 16 << 20
    /// Most clips in one set.
    public static let maximumClips = 100_000
    /// The `format` value a manifest carries.
    public static let formatName = "beats-reference-set"

    /// Reads and checks the manifest at `path`. Files it names are resolved against its folder
    /// (they are not opened here).
    public static func read(path: String) throws(ReferenceManifestError) -> ReferenceManifest {
        let bytes: [UInt8]
        do {
            let file = try MappedFile(path: path)
            guard file.count <= maximumBytes else {
                throw ReferenceManifestError.tooLarge(file: path, bytes: file.count, limit: maximumBytes)
            }
            bytes = Array(file.bytes)
        } catch let error as ReferenceManifestError {
            throw error
        } catch {
            throw .unreadable(file: path, reason: String(describing: error))
        }
        return try parse(bytes, path: path)
    }

    /// Checks manifest text as if read from `path` (whose folder resolves relative names).
    public static func parse(_ bytes: [UInt8], path: String) throws(ReferenceManifestError) -> ReferenceManifest {
        let root: JSONValue
        do {
            root = try JSONReader.parse(bytes, limits: JSONReader.Limits(maximumDepth: 16, maximumValues: 1 << 22))
        } catch {
            throw .invalidJSON(file: path, reason: error.description)
        }
        let reader = Reader(file: path, directory: (path as NSString).deletingLastPathComponent)
        return try reader.manifest(root)
    }
}

/// Why a reference set's manifest was refused; every case names the file and, where there is
/// one, the key (dotted path, e.g. `clips[2].output_sha256`).
public enum ReferenceManifestError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(file: String, reason: String)
    case tooLarge(file: String, bytes: Int, limit: Int)
    case invalidJSON(file: String, reason: String)
    case missingKey(file: String, key: String)
    case wrongType(file: String, key: String, expected: String, found: String)
    case invalidValue(file: String, key: String, reason: String)

    /// The message, naming the file and the key.
    public var description: String {
        switch self {
        case .unreadable(let file, let reason): return "reference manifest \(file): cannot read it: \(reason)"
        case .tooLarge(let file, let bytes, let limit): return "reference manifest \(file): \(bytes) bytes, more than the \(limit) accepted"
        case .invalidJSON(let file, let reason): return "reference manifest \(file): \(reason)"
        case .missingKey(let file, let key): return "reference manifest \(file): '\(key)' is missing"
        case .wrongType(let file, let key, let expected, let found):
            return "reference manifest \(file): '\(key)' must be \(expected), found \(found)"
        case .invalidValue(let file, let key, let reason): return "reference manifest \(file): '\(key)' \(reason)"
        }
    }
}

/// The checks, key by key, with the dotted path of each value for messages.
private struct Reader {
    let file: String
    let directory: String

    func manifest(_ root: JSONValue) throws(ReferenceManifestError) -> ReferenceManifest {
        let top = try object(root, "(top level)")
        let format = try string(top, "format", in: "")
        guard format == ReferenceManifest.formatName else {
            throw .invalidValue(file: file, key: "format", reason: "is '\(format)', expected '\(ReferenceManifest.formatName)'")
        }
        let version = try integer(top, "version", in: "")
        guard version == 1 else { throw .invalidValue(file: file, key: "version", reason: "is \(version); this beats reads version 1") }
        let checkpoint = try self.checkpoint(try value(top, "checkpoint", in: ""))
        var producer: [String: String] = [:]
        if let members = try optionalObject(top, "producer", in: "") {
            for member in members {
                switch member.value {
                case .string(let text): producer[member.key] = text
                case .null: break
                default: throw .wrongType(file: file, key: "producer.\(member.key)", expected: "a string or null", found: member.value.typeName)
                }
            }
        }
        guard case .array(let items) = try value(top, "clips", in: "") else {
            throw .wrongType(file: file, key: "clips", expected: "an array", found: try value(top, "clips", in: "").typeName)
        }
        guard !items.isEmpty else { throw .invalidValue(file: file, key: "clips", reason: "is empty: a set needs at least one clip") }
        guard items.count <= ReferenceManifest.maximumClips else {
            throw .invalidValue(file: file, key: "clips", reason: "holds \(items.count) clips, more than \(ReferenceManifest.maximumClips)")
        }
        var clips: [ReferenceManifest.Clip] = []
        var names: Set<String> = []
        for (index, item) in items.enumerated() {
            let clip = try self.clip(item, key: "clips[\(index)]")
            guard names.insert(clip.name).inserted else {
                throw .invalidValue(file: file, key: "clips[\(index)].name", reason: "'\(clip.name)' appears twice")
            }
            clips.append(clip)
        }
        return ReferenceManifest(producer: producer, checkpoint: checkpoint, clips: clips, path: file)
    }

    func checkpoint(_ json: JSONValue) throws(ReferenceManifestError) -> ReferenceManifest.Checkpoint {
        let members = try object(json, "checkpoint")
        let kindText = try string(members, "kind", in: "checkpoint")
        guard let kind = ModelKind(rawValue: kindText) else {
            throw .invalidValue(file: file, key: "checkpoint.kind", reason: "is '\(kindText)', expected pretrained, finetuned or tokenizer")
        }
        let configMembers = try object(try value(members, "config", in: "checkpoint"), "checkpoint.config")
        var values: [String: ConfigScalar] = [:]
        for member in configMembers {
            switch member.value {
            case .bool(let flag): values[member.key] = .bool(flag)
            case .integer(let number): values[member.key] = .int(number)
            case .number(let number): values[member.key] = .double(number)
            case .string(let text): values[member.key] = .string(text)
            case .null, .array, .object: continue   // not a BEATs key; the official code ignores it too
            }
        }
        let config: BEATsConfig
        do {
            config = try BEATsConfig(values: values)
        } catch {
            throw .invalidValue(file: file, key: "checkpoint.config", reason: error.description)
        }
        return ReferenceManifest.Checkpoint(file: try string(members, "file", in: "checkpoint"),
                                            sha256: try digest(members, "sha256", in: "checkpoint"), kind: kind, config: config)
    }

    func clip(_ json: JSONValue, key: String) throws(ReferenceManifestError) -> ReferenceManifest.Clip {
        let members = try object(json, key)
        let name = try string(members, "name", in: key)
        guard !name.isEmpty, name.count <= 255, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalidValue(file: file, key: "\(key).name", reason: "must be 1 to 255 printable characters")
        }
        let audio = try string(members, "audio", in: key)
        guard !audio.isEmpty else { throw .invalidValue(file: file, key: "\(key).audio", reason: "is empty") }
        let dtype = try string(members, "dtype", in: key)
        guard dtype == "float32" || dtype == "int64" else {
            throw .invalidValue(file: file, key: "\(key).dtype", reason: "is '\(dtype)', expected float32 or int64")
        }
        guard case .array(let dimensions) = try value(members, "shape", in: key), (1...4).contains(dimensions.count) else {
            throw .wrongType(file: file, key: "\(key).shape", expected: "an array of 1 to 4 sizes", found: try value(members, "shape", in: key).typeName)
        }
        var shape: [Int] = []
        var elements = 1
        for (index, dimension) in dimensions.enumerated() {
            guard case .integer(let size) = dimension, size >= 0, size <= 1 << 30 else {
                throw .invalidValue(file: file, key: "\(key).shape[\(index)]", reason: "must be a size from 0 to 2^30")
            }
            elements = elements.multipliedReportingOverflow(by: size).partialValue
            guard elements <= 1 << 31 else { throw .invalidValue(file: file, key: "\(key).shape", reason: "holds more than 2^31 elements") }
            shape.append(size)
        }
        let output = try setFile(members, "output", in: key)
        var truthPath: String?
        var truthSHA256: [UInt8]?
        if members.contains(where: { $0.key == "truth" }) {
            truthPath = try setFile(members, "truth", in: key)
            truthSHA256 = try digest(members, "truth_sha256", in: key)
        }
        let (request, windowing, decode) = try options(try optionalObject(members, "options", in: key) ?? [], key: "\(key).options")
        return ReferenceManifest.Clip(name: name, audioPath: audio.hasPrefix("/") ? audio : directory.isEmpty ? audio : directory + "/" + audio,
                                      audio: audio, audioSHA256: try digest(members, "audio_sha256", in: key),
                                      outputPath: output, outputSHA256: try digest(members, "output_sha256", in: key),
                                      shape: shape, dtype: dtype, truthPath: truthPath, truthSHA256: truthSHA256,
                                      request: request, windowing: windowing, decode: decode)
    }

    /// The clip's options; an option this reader does not know is refused (it could not honour it).
    func options(_ members: [JSONMember], key: String) throws(ReferenceManifestError) -> (OutputRequest, Windowing?, String) {
        var request = OutputRequest.official
        var window: Double?
        var hop: Double?
        var decode = "wav"
        func setRequest(_ new: OutputRequest, _ name: String) throws(ReferenceManifestError) {
            guard request == .official else { throw .invalidValue(file: file, key: "\(key).\(name)", reason: "excludes layer, frames and pool given together") }
            request = new
        }
        for member in members {
            let path = "\(key).\(member.key)"
            switch (member.key, member.value) {
            case ("decode", .string(let text)) where text == "wav" || text == "soundfile": decode = text
            case ("decode", _): throw .invalidValue(file: file, key: path, reason: "must be \"wav\" or \"soundfile\"")
            case ("layer", .integer(let layer)) where (1...1024).contains(layer): try setRequest(.layer(layer), member.key)
            case ("layer", _): throw .invalidValue(file: file, key: path, reason: "must be a layer number from 1")
            case ("frames", .bool(let flag)): if flag { try setRequest(.frameProbabilities, member.key) }
            case ("frames", _): throw .wrongType(file: file, key: path, expected: "a bool", found: member.value.typeName)
            case ("pool", .string("mean")): try setRequest(.meanPooled, member.key)
            case ("pool", _): throw .invalidValue(file: file, key: path, reason: "must be \"mean\"")
            case ("window", _), ("hop", _):
                let seconds: Double
                switch member.value {
                case .integer(let number): seconds = Double(number)
                case .number(let number): seconds = number
                default: throw .wrongType(file: file, key: path, expected: "a number of seconds", found: member.value.typeName)
                }
                guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
                    throw .invalidValue(file: file, key: path, reason: "must be a positive number of seconds")
                }
                if member.key == "window" { window = seconds } else { hop = seconds }
            default:
                throw .invalidValue(file: file, key: path, reason: "is an option this beats does not know (update beats or remake the set)")
            }
        }
        if hop != nil && window == nil { throw .invalidValue(file: file, key: "\(key).hop", reason: "needs 'window'") }
        return (request, window.map { Windowing(length: $0, hop: hop) }, decode)
    }

    // MARK: - Typed access

    func object(_ json: JSONValue, _ key: String) throws(ReferenceManifestError) -> [JSONMember] {
        guard case .object(let members) = json else { throw .wrongType(file: file, key: key, expected: "an object", found: json.typeName) }
        return members
    }

    func value(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> JSONValue {
        guard let member = members.first(where: { $0.key == key }) else { throw .missingKey(file: file, key: join(parent, key)) }
        return member.value
    }

    func optionalObject(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> [JSONMember]? {
        guard let member = members.first(where: { $0.key == key }) else { return nil }
        return try object(member.value, join(parent, key))
    }

    func string(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> String {
        let json = try value(members, key, in: parent)
        guard case .string(let text) = json else { throw .wrongType(file: file, key: join(parent, key), expected: "a string", found: json.typeName) }
        return text
    }

    func integer(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> Int {
        let json = try value(members, key, in: parent)
        guard case .integer(let number) = json else { throw .wrongType(file: file, key: join(parent, key), expected: "an integer", found: json.typeName) }
        return number
    }

    /// 64 lowercase or uppercase hex digits as 32 bytes.
    func digest(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> [UInt8] {
        let text = try string(members, key, in: parent)
        guard let bytes = SHA256Digest.bytes(hex: text) else {
            throw .invalidValue(file: file, key: join(parent, key), reason: "must be a SHA-256 in 64 hex digits")
        }
        return bytes
    }

    /// A file of the set: a plain name inside the set's folder (no '/', not '.' or '..').
    func setFile(_ members: [JSONMember], _ key: String, in parent: String) throws(ReferenceManifestError) -> String {
        let name = try string(members, key, in: parent)
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
            throw .invalidValue(file: file, key: join(parent, key), reason: "must be a file name inside the set's folder, got '\(name)'")
        }
        return directory.isEmpty ? name : directory + "/" + name
    }

    func join(_ parent: String, _ key: String) -> String { parent.isEmpty ? key : "\(parent).\(key)" }
}

/// SHA-256 digests as the manifest writes them (hex) and of files.
public enum SHA256Digest {
    /// Lowercase hex of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// 32 bytes from 64 hex digits; nil for anything else.
    public static func bytes(hex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// SHA-256 of the file at `path`.
    public static func ofFile(path: String) throws -> [UInt8] {
        try SHA256.digest(ofFileAt: path)
    }
}
