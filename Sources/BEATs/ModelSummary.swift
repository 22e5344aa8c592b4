import BEATsCheckpoint
import BEATsCore

/// What `inspect` shows about any `WeightStore`, gathered without reading tensor values.
public struct ModelSummary: Sendable {
    /// One tensor as the file declares it.
    public struct Tensor: Sendable, Equatable {
        /// The tensor's name in the state dict, e.g. `post_extract_proj.weight`.
        public var name: String
        /// Element type as stored (`qint8` for an int8-quantized matrix).
        public var dtype: DType
        /// Dimensions, outermost first.
        public var shape: [Int]
        /// Bytes the tensor takes in the file (values and, for int8, its scales).
        public var byteCount: Int
        /// Number of elements: the product of the shape.
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// "pytorch-zip", "pytorch-legacy" or the native format's name.
    public var format: String
    /// What the model outputs: features, AudioSet probabilities or tokens.
    public var kind: ModelKind
    /// The official `cfg` the file carries (the official defaults when it carries none).
    public var config: BEATsConfig
    /// What the file is when it carries no BEATs config ("a state dict with N tensors, no BEATs
    /// config"); nil for a BEATs model.
    public var configAbsence: String?
    /// Classifier labels the file carries.
    public var labelCount: Int
    /// Every tensor in file order (for a checkpoint: exactly its `model` state dict's keys).
    public var tensors: [Tensor]

    /// Gathers the summary from the file's header (checkpoint pickle or native header) without
    /// touching a page of tensor data.
    public init(_ store: any WeightStore) throws {
        format = store.formatName
        kind = store.kind
        config = store.config
        configAbsence = store.configAbsence
        labelCount = store.labels.count
        tensors = []
        tensors.reserveCapacity(store.tensorNames.count)
        let checkpoint = store as? PyTorchCheckpoint
        for name in store.tensorNames {
            if let record = checkpoint?.tensorRecord(named: name) {
                // From the pickle alone (checked at open): no page of the record is touched.
                let elements = record.shape.reduce(1, *)
                tensors.append(Tensor(name: name, dtype: record.dtype, shape: record.shape, byteCount: elements * record.dtype.byteWidth))
            } else if let matrix = try store.quantizedMatrix(named: name) {
                tensors.append(Tensor(name: name, dtype: .qint8, shape: [matrix.rows, matrix.columns],
                                      byteCount: matrix.rows * matrix.columns + matrix.rows * MemoryLayout<Float>.size))
            } else if let view = try store.tensor(named: name) {
                tensors.append(Tensor(name: name, dtype: view.dtype, shape: view.shape, byteCount: view.byteCount))
            } else {
                throw BEATsError.inconsistentFile("\(format) file lists tensor '\(name)' but does not return it")
            }
        }
    }

    // MARK: Human output

    /// The human table `beats inspect` prints.
    public func table(path: String) -> String {
        var lines = [String]()
        lines.append("file:    \(path)")
        lines.append("format:  \(format)")
        if let configAbsence {
            lines.append("kind:    none: not a BEATs model")
            lines.append("config:  none: \(configAbsence) (convert and run refuse it)")
        } else {
            lines.append("kind:    \(kind.rawValue)")
            lines.append("config:")
            let width = config.values.map(\.key.count).max() ?? 0
            for (key, value) in config.values {
                lines.append("  \(key.padding(width)) \(ModelSummary.render(value))")
            }
        }
        lines.append("labels:  \(labelCount)")
        lines.append("tensors: \(tensors.count)")
        let rows = tensors.map { tensor in
            [tensor.name, tensor.dtype.rawValue, "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]",
             ModelSummary.byteSize(tensor.byteCount)]
        }
        let header = ["name", "dtype", "shape", "size"]
        let widths = (0..<4).map { column in max(header[column].count, rows.map { $0[column].count }.max() ?? 0) }
        func layout(_ row: [String]) -> String {
            "  " + row[0].padding(widths[0]) + "  " + row[1].padding(widths[1]) + "  " + row[2].padding(widths[2])
                + "  " + String(repeating: " ", count: widths[3] - row[3].count) + row[3]
        }
        lines.append(layout(header))
        lines.append(contentsOf: rows.map(layout))
        let parameters = tensors.reduce(0) { $0 + $1.elementCount }
        let bytes = tensors.reduce(0) { $0 + $1.byteCount }
        lines.append("total:   \(tensors.count) tensors, \(ModelSummary.grouped(parameters)) elements, \(ModelSummary.byteSize(bytes)) (\(ModelSummary.grouped(bytes)) bytes)")
        return lines.joined(separator: "\n") + "\n"
    }

    static func render(_ value: ConfigScalar) -> String {
        switch value {
        case .int(let number): return String(number)
        case .double(let number): return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .string(let text): return text
        }
    }

    /// `count` bytes for people: "512 B", "12.0 KiB", "1.5 GiB" (binary units, one decimal).
    public static func byteSize(_ count: Int) -> String {
        if count < 1024 { return "\(count) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    static func grouped(_ number: Int) -> String {
        let digits = Array(String(number))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return out
    }

    // MARK: JSON

    /// `{"format", "kind", "config": {...}, "labels": N, "tensors": [{"name", "dtype", "shape"}]}`,
    /// keys in that order, one line; for a file without a BEATs config `"kind": null, "config":
    /// null, "note": "a state dict with N tensors, no BEATs config"`.
    public func json() -> String {
        var out = "{\"format\": \(JSONText.string(format)), "
        if let configAbsence {
            // Not a BEATs model: no kind, no config, and what it is instead.
            out += "\"kind\": null, \"config\": null, \"note\": \(JSONText.string(configAbsence))"
        } else {
            out += "\"kind\": \(JSONText.string(kind.rawValue)), \"config\": {"
            out += config.values.map { key, value in JSONText.string(key) + ": " + JSONText.scalar(value) }.joined(separator: ", ")
            out += "}"
        }
        out += ", \"labels\": \(labelCount), \"tensors\": ["
        out += tensors.map { tensor in
            "{\"name\": \(JSONText.string(tensor.name)), \"dtype\": \(JSONText.string(tensor.dtype.rawValue)), \"shape\": ["
                + tensor.shape.map(String.init).joined(separator: ", ") + "]}"
        }.joined(separator: ", ")
        out += "]}\n"
        return out
    }
}

/// JSON literals without Foundation (the CLI keeps its start-up small).
public enum JSONText {
    /// `text` as a JSON string literal.
    public static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A config value as JSON (a number, bool or string literal).
    public static func scalar(_ value: ConfigScalar) -> String {
        switch value {
        case .int(let number): return String(number)
        case .double(let value): return number(value)
        case .bool(let flag): return flag ? "true" : "false"
        case .string(let text): return string(text)
        }
    }

    /// A finite double as JSON (shortest round-trip form); NaN and infinities, which JSON
    /// cannot write, become null.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        return String(value)
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
