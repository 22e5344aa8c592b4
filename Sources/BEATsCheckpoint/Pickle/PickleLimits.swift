/// Explicit resource bounds for loading and walking a pickle. Each one turns a hostile input into
/// a ``PickleError/limitExceeded(limit:value:at:)`` instead of unbounded memory or time.
///
/// Without any of them memory would still be linear in the input (every opcode makes at most
/// one value; strings, bytes and integers cannot be longer than the bytes left; memo entries are
/// shared, never copied), so the defaults are set far above what real checkpoints need and only
/// cap the constant factor.
public struct PickleLimits: Sendable, Equatable {
    /// Values plus marks on the machine's stack. Python's pickler batches containers in runs of
    /// 1000 items, so a real pickle needs a few thousand at most; 200 000 nested `EMPTY_LIST`s or
    /// MARKs stop here.
    public var maxStackDepth: Int = 100_000
    /// Distinct memo keys. A real pickle has about one per value it made.
    public var maxMemoEntries: Int = 1_000_000
    /// Values made in total (the arena's size; about 40 bytes each). The full-size BEATs state
    /// dict makes about 10 000.
    public var maxNodes: Int = 4_000_000
    /// Bytes of one LONG1/LONG4 integer (Python's own limit is only memory). 8192 bits is far
    /// beyond any number in a checkpoint; the legacy magic number takes 10 bytes.
    public var maxIntegerBytes: Int = 1024
    /// Dicts nested inside each other when ``PickleObject/tensorEntries(in:)`` joins names.
    /// Loading itself never recurses, so this only bounds the walk's name lengths.
    public var maxNestingDepth: Int = 256
    /// Bytes of one joined tensor name (`encoder.layers.0.fc1.weight`).
    public var maxNameLength: Int = 4096
    /// Bytes of all joined names one ``PickleObject/tensorEntries(in:)`` call produces, and of all
    /// keys one ``PickleObject/configScalars(in:)`` call hashes: names built from memoized keys can
    /// otherwise grow much faster than the input.
    public var maxTotalNameBytes: Int = 64 << 20
    /// Elements one load may copy out of existing values, per input byte (plus a fixed 1 Mi):
    /// `torch.Size(list)`, `OrderedDict(pairs)`, `set(list)`, a tensor's size and stride,
    /// `_codecs.encode(text)`. The memo lets five bytes name a container of a million items, so
    /// without this budget a short pickle could copy it again and again. Real pickles copy less
    /// than one element per byte.
    public var maxCopiesPerInputByte: Int = 16
    /// Dimensions of one tensor (torch itself allows a few dozen).
    public var maxTensorRank: Int = 64

    public init() {}

    public init(maxStackDepth: Int = 100_000, maxMemoEntries: Int = 1_000_000, maxNodes: Int = 4_000_000,
                maxIntegerBytes: Int = 1024, maxNestingDepth: Int = 256, maxNameLength: Int = 4096,
                maxTotalNameBytes: Int = 64 << 20, maxCopiesPerInputByte: Int = 16, maxTensorRank: Int = 64) {
        self.maxStackDepth = maxStackDepth
        self.maxMemoEntries = maxMemoEntries
        self.maxNodes = maxNodes
        self.maxIntegerBytes = maxIntegerBytes
        self.maxNestingDepth = maxNestingDepth
        self.maxNameLength = maxNameLength
        self.maxTotalNameBytes = maxTotalNameBytes
        self.maxCopiesPerInputByte = maxCopiesPerInputByte
        self.maxTensorRank = maxTensorRank
    }

    /// The copy budget of a pickle of `byteCount` bytes.
    func copyBudget(forInputBytes byteCount: Int) -> Int {
        let (perByte, overflow) = byteCount.multipliedReportingOverflow(by: max(maxCopiesPerInputByte, 0))
        return overflow ? Int.max : perByte.addingReportingOverflow(1 << 20).overflow ? Int.max : perByte + (1 << 20)
    }
}
