import BEATsCore

/// One AudioSet class with its probability for a clip, as `classify` ranks them.
public struct LabelScore: Sendable, Equatable, Codable {
    /// Position of the class in the classifier's output.
    public var index: Int
    /// AudioSet machine id, e.g. `/m/09x0r` ("" when the file has no label for the index).
    public var mid: String
    /// Display name, e.g. "Speech" ("class N" when the file has no label for the index).
    public var name: String
    /// Sigmoid probability of the class, as the official model returns it.
    public var probability: Float

    /// A class with its probability.
    public init(index: Int, mid: String, name: String, probability: Float) {
        self.index = index
        self.mid = mid
        self.name = name
        self.probability = probability
    }

    /// The `top` most probable classes of `probabilities`, most probable first (ties by index),
    /// named from `labels`.
    public static func ranked(_ probabilities: [Float], labels: [AudioSetLabel], top: Int) -> [LabelScore] {
        probabilities.indices
            .sorted { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }
            .prefix(max(0, top))
            .map { index in
                let label = index < labels.count ? labels[index] : nil
                return LabelScore(index: index, mid: label?.mid ?? "", name: label?.name ?? "class \(index)",
                                  probability: probabilities[index])
            }
    }
}

/// A pre-trained model's features for a clip: one row of `dimension` values per token.
public struct Features: Sendable, Equatable {
    /// Tokens (time × frequency patches: 8 per 16 fbank frames).
    public let tokenCount: Int
    /// Width of each token's feature (768 for the official models).
    public let dimension: Int
    /// Row-major [tokenCount, dimension].
    public let values: [Float]

    /// Features from row-major `values`, which must hold `tokenCount × dimension` of them.
    public init(tokenCount: Int, dimension: Int, values: [Float]) {
        precondition(values.count == tokenCount * dimension, "features: \(values.count) values for [\(tokenCount), \(dimension)]")
        self.tokenCount = tokenCount
        self.dimension = dimension
        self.values = values
    }

    /// Token `index`'s feature vector.
    public subscript(token index: Int) -> ArraySlice<Float> {
        values[(index * dimension)..<((index + 1) * dimension)]
    }

    /// The mean over tokens [dimension]: one embedding for the whole clip (`--pool mean`).
    public func meanPooled() -> [Float] {
        var sums = [Double](repeating: 0, count: dimension)
        for token in 0..<tokenCount {
            for index in 0..<dimension { sums[index] += Double(values[token * dimension + index]) }
        }
        return sums.map { Float($0 / Double(max(tokenCount, 1))) }
    }
}

/// What the official code returns for one clip, by model kind (what `beats run` writes), or
/// one of the finer outputs an ``OutputRequest`` asks for.
public enum ModelOutput: Sendable, Equatable {
    /// Pre-trained: `extract_features(wav[None])[0]`, float32 [1, T, D]; also an encoder
    /// layer's output (``OutputRequest/layer(_:)``).
    case features(Features)
    /// Fine-tuned: class probabilities, float32 [1, C].
    case probabilities([Float])
    /// Tokenizer: `extract_labels(wav[None])`, int64 [T].
    case tokens([Int])
    /// Fine-tuned, per token: sigmoid(predictor(x)) before the official mean over time,
    /// float32 [1, T, C] (`dimension` is the class count).
    case frameProbabilities(Features)
    /// Pre-trained: the features' mean over tokens, one embedding for the clip, float32 [1, D].
    case embedding([Float])

    /// The output's shape, batch axis included where the official code has one.
    public var shape: [Int] {
        switch self {
        case .features(let matrix), .frameProbabilities(let matrix): return [1, matrix.tokenCount, matrix.dimension]
        case .probabilities(let values), .embedding(let values): return [1, values.count]
        case .tokens(let values): return [values.count]
        }
    }

    /// The output as a NumPy `.npy` file (float32 or int64 little-endian, in ``shape``).
    public func npyBytes() -> [UInt8] {
        if case .tokens(let values) = self { return NumpyFile.encode(values.map(Int64.init), shape: shape) }
        return NumpyFile.encode(floatValues ?? [], shape: shape)
    }

    /// Float outputs as one flat array (row-major); nil for tokens.
    public var floatValues: [Float]? {
        switch self {
        case .features(let matrix), .frameProbabilities(let matrix): return matrix.values
        case .probabilities(let values), .embedding(let values): return values
        case .tokens: return nil
        }
    }

    /// The windows of one recording as one array, as `beats run --window` writes it: token
    /// outputs (features, per-frame probabilities, tokens) concatenated along the token axis,
    /// per-clip outputs (probabilities, embeddings) stacked into [windows, width].
    public static func shape(joining windows: [ModelOutput]) -> [Int] {
        guard let first = windows.first else { return [0] }
        switch first {
        case .tokens:
            return [windows.reduce(0) { $0 + ($1.shape.first ?? 0) }]
        case .features(let matrix), .frameProbabilities(let matrix):
            return [1, windows.reduce(0) { $0 + $1.shape[1] }, matrix.dimension]
        case .probabilities(let row), .embedding(let row):
            return [windows.count, row.count]
        }
    }

    /// ``shape(joining:)``'s array as a `.npy` file.
    public static func npyBytes(joining windows: [ModelOutput]) -> [UInt8] {
        let shape = shape(joining: windows)
        if case .tokens = windows.first {
            let tokens = windows.flatMap { output -> [Int] in if case .tokens(let values) = output { return values } else { return [] } }
            return NumpyFile.encode(tokens.map(Int64.init), shape: shape)
        }
        return NumpyFile.encode(windows.flatMap { $0.floatValues ?? [] }, shape: shape)
    }
}

/// Which output `BEATsModel.output(for:request:)` computes.
public enum OutputRequest: Sendable, Equatable {
    /// The official output of the model's kind.
    case official
    /// The output of encoder layer N (1 … layers), as the official `model.encoder(x, layer: N - 1)[0]`.
    case layer(Int)
    /// Fine-tuned models: per-token probabilities before the mean over time.
    case frameProbabilities
    /// Pre-trained models: the features' mean over tokens.
    case meanPooled
}

/// How to cut long audio into windows: `length` seconds starting every `hop` seconds.
///
/// Window k starts at k·hop; the last window ends at the end of the audio (it may be shorter)
/// and is kept when it holds at least one BEATs patch. Each window's output is exactly the
/// official output for that slice of the 16 kHz waveform.
public struct Windowing: Sendable, Equatable {
    /// Window length in seconds.
    public var length: Double
    /// Seconds between window starts.
    public var hop: Double

    /// Windows of `length` seconds every `hop` seconds (non-overlapping when `hop` is omitted).
    public init(length: Double, hop: Double? = nil) {
        self.length = length
        self.hop = hop ?? length
    }

    /// The sample ranges of the windows over `sampleCount` samples at `sampleRate` Hz, dropping
    /// a last window shorter than `minimumSamples`.
    public func ranges(sampleCount: Int, sampleRate: Int, minimumSamples: Int) throws(BEATsError) -> [Range<Int>] {
        try validate()
        var ranges: [Range<Int>] = []
        var index = 0
        while true {
            let nominal = bounds(ofWindow: index, sampleRate: sampleRate)
            guard nominal.lowerBound < sampleCount else { break }
            let window = nominal.lowerBound..<min(nominal.upperBound, sampleCount)
            if keeps(window, isFirst: ranges.isEmpty, minimumSamples: minimumSamples) { ranges.append(window) }
            if window.upperBound == sampleCount { break }
            index += 1
        }
        return ranges
    }

    /// Throws unless length and hop are positive numbers of seconds.
    func validate() throws(BEATsError) {
        guard length.isFinite, length > 0 else { throw .invalidWindowing("length must be a positive number of seconds, got \(length)") }
        guard hop.isFinite, hop > 0 else { throw .invalidWindowing("hop must be a positive number of seconds, got \(hop)") }
    }

    /// Window `index`'s samples before the end of the audio cuts it: [k·hop, k·hop + length).
    func bounds(ofWindow index: Int, sampleRate: Int) -> Range<Int> {
        let start = Int((Double(index) * hop * Double(sampleRate)).rounded())
        return start..<(start + max(1, Int((length * Double(sampleRate)).rounded())))
    }

    /// A window is kept when it holds one patch; the first is always kept, so audio shorter
    /// than a patch is refused by the model with its length, not silently dropped.
    func keeps(_ window: Range<Int>, isFirst: Bool, minimumSamples: Int) -> Bool {
        window.count >= minimumSamples || isFirst
    }
}

/// One window's result over long audio: its place in the recording and its value.
public struct WindowResult<Value: Sendable>: Sendable {
    /// Start of the window, seconds from the start of the audio.
    public let start: Double
    /// End of the window, seconds from the start of the audio.
    public let end: Double
    /// The window's result (labels, features, tokens, …).
    public let value: Value
}

extension WindowResult: Equatable where Value: Equatable {}

/// Classification of long audio: a timeline of windows and, per class, its maximum over windows.
public struct WindowedClassification: Sendable, Equatable {
    /// Each window's top labels, in time order.
    public let windows: [WindowResult<[LabelScore]>]
    /// The top classes by their highest probability in any window.
    public let labels: [LabelScore]

    /// Collects windows one at a time: each window's top labels and the running per-class maximum.
    struct Builder {
        let labels: [AudioSetLabel]
        let top: Int
        private var maxima: [Float] = []
        private var timeline: [WindowResult<[LabelScore]>] = []

        init(labels: [AudioSetLabel], top: Int) {
            self.labels = labels
            self.top = top
        }

        mutating func add<Value>(_ window: WindowResult<Value>, probabilities: [Float]) {
            maxima = maxima.isEmpty ? probabilities : zip(maxima, probabilities).map { max($0, $1) }
            timeline.append(WindowResult<[LabelScore]>(start: window.start, end: window.end,
                                                       value: LabelScore.ranked(probabilities, labels: labels, top: top)))
        }

        var result: WindowedClassification {
            WindowedClassification(windows: timeline, labels: LabelScore.ranked(maxima, labels: labels, top: top))
        }
    }
}
