/// A source of BEATs weights, whatever file they came from (PyTorch checkpoint or native file).
/// The runtime and the converter only see this.
public protocol WeightStore: AnyObject, Sendable {
    /// Name of the container format: "pytorch-zip", "pytorch-legacy" or the native format's name.
    var formatName: String { get }
    var kind: ModelKind { get }
    var config: BEATsConfig { get }
    /// False when the file carries no BEATs config (a bare state dict, another model's
    /// checkpoint): ``config`` then holds the official defaults, which describe no model
    /// (`input_patch_size` -1), so converting or running the file is refused with
    /// ``requireBEATsConfig()``. `inspect` still lists what the file holds.
    var hasBEATsConfig: Bool { get }
    /// Classifier labels (index → MID → display name); empty for models without a classifier.
    var labels: [AudioSetLabel] { get }
    /// Tensor names in file order (state-dict keys for checkpoints).
    var tensorNames: [String] { get }
    /// A tensor by name, nil when absent. Reading its values touches its bytes; this call does not.
    func tensor(named name: String) throws -> TensorView?
    /// The int8 form of `name` when the file stores it quantized (native int8 files), else nil.
    /// For such a tensor `tensor(named:)` gives the dequantized float32 values.
    func quantizedMatrix(named name: String) throws -> QuantizedMatrix?
    /// Reads every byte the file protects and compares it with the file's own checksums, so that
    /// `beats check` and library callers can vouch for a whole file without knowing its format
    /// (opening checks only metadata, to stay cheap). What is checked is the format's own:
    /// a native file compares every region's XXH64 with its table; a PyTorch zip checkpoint
    /// compares every record's CRC-32 with the central directory (stored records too, which
    /// reading tensors never checks); a legacy PyTorch stream carries no checksum, so it can only
    /// build every tensor's view, which checks each against its storage's bounds. Throws the
    /// first failure, with the format's own error naming the tensor or record and its offset.
    func verifyChecksums() throws
}

/// An int8 weight matrix quantized symmetrically per output row: `weight[r][c] ≈ values[r*columns + c] * scales[r]`.
/// Rows are output features (a Linear's `weight` is [rows = out, columns = in]), stored row-major
/// in place in a mapped native file.
public struct QuantizedMatrix: @unchecked Sendable {
    public let name: String
    public let rows: Int
    public let columns: Int
    public let values: UnsafeBufferPointer<Int8>
    public let scales: UnsafeBufferPointer<Float>
    /// Keeps `values` and `scales` alive (the mapped file).
    public let owner: AnyObject

    public init(name: String, rows: Int, columns: Int, values: UnsafeBufferPointer<Int8>, scales: UnsafeBufferPointer<Float>, owner: AnyObject) {
        self.name = name
        self.rows = rows
        self.columns = columns
        self.values = values
        self.scales = scales
        self.owner = owner
    }
}

extension WeightStore {
    /// The int8 form of a weight the file stores quantized; nil for float weights (default).
    public func quantizedMatrix(named name: String) throws -> QuantizedMatrix? { nil }

    /// Files that always carry their config (native files) need not say so.
    public var hasBEATsConfig: Bool { true }

    /// What the file is when it is not a BEATs model: "a state dict with N tensors, no BEATs
    /// config"; nil when it carries a config.
    public var configAbsence: String? {
        hasBEATsConfig ? nil : "a state dict with \(tensorNames.count) tensors, no BEATs config"
    }

    /// Throws ``ConfigError/absent(format:what:)`` unless the file carries a BEATs config: the
    /// one check before anything is converted or run from it.
    public func requireBEATsConfig() throws(ConfigError) {
        if let what = configAbsence { throw .absent(format: formatName, what: what) }
    }
}
