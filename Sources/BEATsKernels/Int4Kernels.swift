import CBEATsKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The typed Swift layer over the int4 group-wise kernels (`beats_q4_kernels.h`): the converter's
// quantizer, the packed matrix a model file stores (owned, or wrapped in place from a mapped file),
// the activation group sums and the GEMM. The scheme, the float order of the GEMM and the packed
// layout byte for byte are documented in `beats_q4_kernels.h`.

/// Constants and helpers of the int4 scheme shared by the quantizer, the packed matrix and the GEMM.
public enum Int4Kernels {
    /// The group sizes the kernels accept: consecutive input columns sharing one scale and minimum.
    public static let groupSizes = [32, 64, 128]

    /// Activation levels the int4 GEMM is made for: full int8 (±127) on every variant. With 4-bit
    /// unsigned weights no vpmaddubsw pair can saturate, so the 7-bit form the int8 AVX2 kernel
    /// prefers buys nothing here.
    public static let activationLevels = Int32(BEATS_ACTIVATION_LEVELS_INT8)

    /// Output columns (weight rows) per packed panel: column ranges on multiples of it split best.
    public static let panelColumns = Int(BEATS_Q4_PANEL_ROWS)

    /// Whether `groupSize` is one of ``groupSizes`` and divides `columns` (a positive count).
    public static func isValid(groupSize: Int, columns: Int) -> Bool {
        groupSizes.contains(groupSize) && columns > 0 && columns % groupSize == 0
    }

    /// The float32 value of an IEEE binary16 bit pattern (`beats_q4_half_to_float`; exact).
    public static func float(fromHalfBits bits: UInt16) -> Float { beats_q4_half_to_float(bits) }

    /// `value` rounded once to binary16, to nearest with ties to even (`beats_q4_half_from_double`).
    public static func halfBits(from value: Double) -> UInt16 { beats_q4_half_from_double(value) }

    /// Per-group sums of int8 activations, `sums[r][g] = Σ_{k in group g} a[r][k]`
    /// (`beats_q4_activation_sums`): the term the GEMM multiplies by each group's minimum. Compute
    /// them once per activation matrix and pass them to every int4 product on it.
    /// `sums` holds `rows` rows of `columns / groupSize` values, `sumsStride` apart.
    public static func activationGroupSums(_ a: UnsafePointer<Int8>, leading aStride: Int, rows: Int, columns: Int,
                                           groupSize: Int, into sums: UnsafeMutablePointer<Int32>,
                                           leading sumsStride: Int) throws(KernelError) {
        try KernelError.check(beats_q4_activation_sums(a, aStride, rows, columns, groupSize, sums, sumsStride))
    }
}

/// An int4 group-quantized weight matrix in plain row-major form: what the quantizer produces, what
/// ``PackedInt4Matrix`` packs and unpacks, and what an exporter writes. Weight row `r`, column `k`
/// stands for `scale(r, k / groupSize) · values[r·columns + k] + minimum(r, k / groupSize)` in float32
/// (product rounded, then sum rounded).
public struct Int4Weights: Sendable, Equatable {
    /// Output features (weight rows).
    public let rows: Int
    /// Input features (weight columns), a multiple of ``groupSize``.
    public let columns: Int
    /// Columns per group: 32, 64 or 128.
    public let groupSize: Int
    /// `rows × columns` values in 0…15, row-major.
    public var values: [UInt8]
    /// `rows × groups` binary16 bit patterns of the group scales, row-major.
    public var scaleBits: [UInt16]
    /// `rows × groups` binary16 bit patterns of the group minimums, row-major.
    public var minimumBits: [UInt16]

    /// Groups per row, `columns / groupSize`.
    public var groups: Int { columns / groupSize }

    /// Wraps row-major arrays; their counts must match the shape (checked). The values are checked
    /// when the matrix is packed.
    public init(rows: Int, columns: Int, groupSize: Int, values: [UInt8], scaleBits: [UInt16], minimumBits: [UInt16]) {
        precondition(rows > 0 && Int4Kernels.isValid(groupSize: groupSize, columns: columns), "int4 shape")
        precondition(values.count == rows * columns, "one value per weight")
        precondition(scaleBits.count == rows * (columns / groupSize) && minimumBits.count == scaleBits.count,
                     "one scale and one minimum per row and group")
        self.rows = rows
        self.columns = columns
        self.groupSize = groupSize
        self.values = values
        self.scaleBits = scaleBits
        self.minimumBits = minimumBits
    }

    /// The scale of `row`'s group `group`, as float32.
    public func scale(row: Int, group: Int) -> Float { Int4Kernels.float(fromHalfBits: scaleBits[row * groups + group]) }

    /// The minimum of `row`'s group `group`, as float32.
    public func minimum(row: Int, group: Int) -> Float {
        Int4Kernels.float(fromHalfBits: minimumBits[row * groups + group])
    }

    /// The float32 weights the values stand for, row-major: `scale · value + minimum`, the product
    /// rounded to float32, then the sum (no fused multiply-add: Swift does not contract).
    public func dequantized() -> [Float] {
        var output = [Float](repeating: 0, count: rows * columns)
        output.withUnsafeMutableBufferPointer { out in
            for row in 0..<rows {
                for group in 0..<groups {
                    let scale = self.scale(row: row, group: group), minimum = self.minimum(row: row, group: group)
                    for column in (group * groupSize)..<((group + 1) * groupSize) {
                        let product = scale * Float(values[row * columns + column])
                        out[row * columns + column] = product + minimum
                    }
                }
            }
        }
        return output
    }
}

/// What int4 quantization lost on one weight row (`beats_weight_row_stats`), against the float32
/// weights the dequantization formula gives back.
public struct Int4RowError: Sendable, Equatable {
    /// Σ_k (w − w')², in float64, summed in column order.
    public let squaredError: Double
    /// Σ_k w², in float64, summed in column order.
    public let squaredNorm: Double
    /// The largest |w − w'| of the row.
    public let maxError: Double
}

/// The result of ``Int4Quantization/quantize(_:rows:columns:groupSize:)``: the quantized matrix
/// and what each row lost, for the converter's report.
public struct Int4QuantizedMatrix: Sendable, Equatable {
    /// The quantized weights.
    public let weights: Int4Weights
    /// One entry per row.
    public let rowErrors: [Int4RowError]

    /// Σ of the rows' squared errors.
    public var squaredError: Double { rowErrors.reduce(0) { $0 + $1.squaredError } }
    /// Σ of the rows' squared norms.
    public var squaredNorm: Double { rowErrors.reduce(0) { $0 + $1.squaredNorm } }
    /// √(Σ error² / Σ w²): the RMS error relative to the RMS weight (0 for an all-zero matrix).
    public var relativeRMSError: Double { squaredNorm > 0 ? (squaredError / squaredNorm).squareRoot() : 0 }
    /// Signal-to-quantization-noise ratio in dB, 10·log10(Σ w² / Σ error²) (+∞ when nothing was lost).
    public var sqnrDecibels: Double {
        squaredError > 0 ? 10 * log10(squaredNorm / squaredError) : .infinity
    }
}

/// Why a weight matrix cannot be quantized to int4.
public enum Int4QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The group size is not 32, 64 or 128, or the column count is not a positive multiple of it.
    case invalidGroupSize(groupSize: Int, columns: Int)
    /// The weight at (`row`, `column`) is NaN or infinite, or beyond the float16 range (|w| > 65504)
    /// in which group minimums and scales are stored. Rows count from the start of the matrix
    /// passed in.
    case notRepresentable(row: Int, column: Int, value: Float)

    /// A one-line English description naming the group size or the weight.
    public var description: String {
        switch self {
        case let .invalidGroupSize(groupSize, columns):
            return "int4 group size \(groupSize) does not fit \(columns) columns (32, 64 or 128, dividing the columns)"
        case let .notRepresentable(row, column, value):
            return "weight [\(row), \(column)] = \(value) cannot be quantized to int4 (NaN, infinite, or beyond ±65504)"
        }
    }
}

/// The converter's int4 quantizer (`beats_q4_quantize_weights`): per group of `groupSize` columns,
/// `minimum = f16(min)`, `scale = f16((max − min) / 15)` (float64 quotient) and
/// `value = clamp(round_half_even((w − minimum) / scale), 0, 15)` in float64.
public enum Int4Quantization {
    /// Quantizes a row-major `rows × columns` float32 matrix (`weights.count ≥ rows · columns`).
    public static func quantize(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                                groupSize: Int) throws(Int4QuantizationError) -> Int4QuantizedMatrix {
        guard rows > 0, Int4Kernels.isValid(groupSize: groupSize, columns: columns) else {
            throw .invalidGroupSize(groupSize: groupSize, columns: columns)
        }
        precondition(weights.count >= rows * columns, "rows × columns weights")
        let groups = columns / groupSize
        var values = [UInt8](repeating: 0, count: rows * columns)
        var scales = [UInt16](repeating: 0, count: rows * groups)
        var minimums = [UInt16](repeating: 0, count: rows * groups)
        var stats = [beats_weight_row_stats](repeating: beats_weight_row_stats(), count: rows)
        let status = beats_q4_quantize_weights(weights.baseAddress, columns, rows, columns, groupSize, &values, columns,
                                               &scales, &minimums, &stats)
        if status == BEATS_ERROR_NOT_FLOAT16.rawValue {
            throw firstUnrepresentable(weights, rows: rows, columns: columns, groupSize: groupSize)
        }
        precondition(status == BEATS_OK.rawValue, String(cString: beats_status_description(status)))
        let weightsOut = Int4Weights(rows: rows, columns: columns, groupSize: groupSize, values: values,
                                     scaleBits: scales, minimumBits: minimums)
        return Int4QuantizedMatrix(weights: weightsOut, rowErrors: stats.map {
            Int4RowError(squaredError: $0.squared_error, squaredNorm: $0.squared_norm, maxError: $0.max_error)
        })
    }

    /// Quantizes a row-major `rows × columns` float32 array.
    public static func quantize(_ weights: [Float], rows: Int, columns: Int,
                                groupSize: Int) throws(Int4QuantizationError) -> Int4QuantizedMatrix {
        precondition(weights.count == rows * columns, "rows × columns weights")
        return try weights.withUnsafeBufferPointer { (buffer) throws(Int4QuantizationError) in
            try quantize(buffer, rows: rows, columns: columns, groupSize: groupSize)
        }
    }

    /// Quantizes one weight row (a 1-row matrix).
    public static func quantizeRow(_ row: [Float], groupSize: Int) throws(Int4QuantizationError) -> Int4QuantizedMatrix {
        try quantize(row, rows: 1, columns: row.count, groupSize: groupSize)
    }

    /// The weight the C quantizer stopped at: the first group, in row-major order, holding a NaN or
    /// infinite weight (named), or one beyond ±65504 (the first such weight).
    private static func firstUnrepresentable(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                                             groupSize: Int) -> Int4QuantizationError {
        let limit = Float(BEATS_Q4_FLOAT16_MAX)
        for row in 0..<rows {
            for start in stride(from: 0, to: columns, by: groupSize) {
                let group = (start..<(start + groupSize)).map { row * columns + $0 }
                if let bad = group.first(where: { !weights[$0].isFinite }) ?? group.first(where: { abs(weights[$0]) > limit }) {
                    return .notRepresentable(row: row, column: bad - row * columns, value: weights[bad])
                }
            }
        }
        // Unreachable: a group is refused only for a non-finite weight or one beyond the limit (a
        // scale beyond it needs max − min > 15 · 65504).
        return .notRepresentable(row: 0, column: 0, value: weights.first ?? 0)
    }
}

/// An int4 weight matrix [rows = outputs, columns = inputs] in the packed layout the GEMM reads and
/// a model file stores (`beats_q4_kernels.h`): either packed here into an owned 64-byte-aligned
/// buffer, or the bytes of a mapped file used in place after validation. Immutable once made.
public final class PackedInt4Matrix: @unchecked Sendable {
    /// Output features (weight rows).
    public let rows: Int
    /// Input features (weight columns).
    public let columns: Int
    /// Columns per group: 32, 64 or 128.
    public let groupSize: Int
    /// Bytes of the packed form (its header's total size); what a file stores.
    public let byteCount: Int
    /// The packed bytes (64-byte aligned).
    let storage: UnsafeRawPointer
    /// The allocation this object owns (nil when it wraps someone else's bytes).
    private let allocation: UnsafeMutableRawPointer?
    /// Keeps wrapped bytes alive (the mapped file they lie in).
    private let owner: AnyObject?

    /// Bytes of the packed form of a `rows × columns` matrix with groups of `groupSize` columns
    /// (`beats_q4_packed_size`), or nil for an invalid shape.
    public static func byteCount(rows: Int, columns: Int, groupSize: Int) -> Int? {
        guard rows > 0, columns > 0, groupSize > 0 else { return nil }
        let size = beats_q4_packed_size(rows, columns, groupSize)
        return size > 0 ? size : nil
    }

    /// Packs row-major values (0…15, `stride` between rows) with `rows × columns/groupSize` f16
    /// scale and minimum bit patterns into an owned buffer (`beats_q4_pack`). Throws
    /// `BEATS_ERROR_GROUP_SIZE`, `BEATS_ERROR_TOO_LARGE` or `BEATS_ERROR_INT4_OUT_OF_RANGE`.
    public init(values: UnsafePointer<UInt8>, stride: Int, rows: Int, columns: Int, groupSize: Int,
                scaleBits: UnsafePointer<UInt16>, minimumBits: UnsafePointer<UInt16>) throws(KernelError) {
        guard rows > 0, columns > 0, groupSize > 0 else { throw KernelError(status: BEATS_ERROR_GROUP_SIZE.rawValue) }
        let size = beats_q4_packed_size(rows, columns, groupSize)
        guard size > 0 else {
            let status = Int4Kernels.isValid(groupSize: groupSize, columns: columns) ? BEATS_ERROR_TOO_LARGE : BEATS_ERROR_GROUP_SIZE
            throw KernelError(status: status.rawValue)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Int(BEATS_Q4_ALIGNMENT))
        let status = beats_q4_pack(values, stride, scaleBits, minimumBits, rows, columns, groupSize, buffer, size)
        guard status == BEATS_OK.rawValue else {
            buffer.deallocate()
            throw KernelError(status: status)
        }
        self.rows = rows
        self.columns = columns
        self.groupSize = groupSize
        byteCount = size
        storage = UnsafeRawPointer(buffer)
        allocation = buffer
        owner = nil
    }

    /// Packs row-major ``Int4Weights`` into an owned buffer (errors as for the pointer initialiser).
    public convenience init(_ weights: Int4Weights) throws(KernelError) {
        try self.init(values: weights.values, stride: weights.columns, rows: weights.rows, columns: weights.columns,
                      groupSize: weights.groupSize, scaleBits: weights.scaleBits, minimumBits: weights.minimumBits)
    }

    /// Uses `bytes` — a packed matrix owned by `owner`, typically a region of a mapped model file —
    /// in place, after `beats_q4_packed_shape` has checked them (alignment, header, every size, and
    /// that the header's total size fits `bytes.count`; extra bytes after it are ignored). `owner`
    /// is kept alive as long as this matrix. Throws `BEATS_ERROR_MISALIGNED` (the bytes do not start
    /// on a 64-byte boundary: use ``init(copying:)``) or `BEATS_ERROR_BAD_PACKED_INT4`.
    public init(wrapping bytes: UnsafeRawBufferPointer, owner: AnyObject) throws(KernelError) {
        guard let base = bytes.baseAddress else { throw KernelError(status: BEATS_ERROR_BAD_PACKED_INT4.rawValue) }
        var rows = 0, columns = 0, group = 0
        try KernelError.check(beats_q4_packed_shape(base, bytes.count, &rows, &columns, &group))
        self.rows = rows
        self.columns = columns
        groupSize = group
        byteCount = beats_q4_packed_size(rows, columns, group)
        storage = base
        allocation = nil
        self.owner = owner
    }

    /// Copies packed bytes (at any alignment) into an owned aligned buffer after validating them as
    /// ``init(wrapping:owner:)`` does. Throws `BEATS_ERROR_BAD_PACKED_INT4`.
    public init(copying bytes: UnsafeRawBufferPointer) throws(KernelError) {
        guard let source = bytes.baseAddress, bytes.count >= Int(BEATS_Q4_HEADER_BYTES) else {
            throw KernelError(status: BEATS_ERROR_BAD_PACKED_INT4.rawValue)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: Int(BEATS_Q4_ALIGNMENT))
        buffer.copyMemory(from: source, byteCount: bytes.count)
        var rows = 0, columns = 0, group = 0
        let status = beats_q4_packed_shape(buffer, bytes.count, &rows, &columns, &group)
        guard status == BEATS_OK.rawValue else {
            buffer.deallocate()
            throw KernelError(status: status)
        }
        self.rows = rows
        self.columns = columns
        groupSize = group
        byteCount = beats_q4_packed_size(rows, columns, group)
        storage = UnsafeRawPointer(buffer)
        allocation = buffer
        owner = nil
    }

    deinit { allocation?.deallocate() }

    /// Groups per row, `columns / groupSize`.
    public var groups: Int { columns / groupSize }

    /// The packed bytes, header included: exactly what a model file stores for this matrix.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage, count: byteCount) }

    /// The matrix in row-major form (`beats_q4_unpack`), for export and checks.
    public func unpacked() -> Int4Weights {
        var values = [UInt8](repeating: 0, count: rows * columns)
        var scales = [UInt16](repeating: 0, count: rows * groups)
        var minimums = [UInt16](repeating: 0, count: rows * groups)
        let status = beats_q4_unpack(storage, byteCount, &values, columns, &scales, &minimums)
        precondition(status == BEATS_OK.rawValue, "validated at init")
        return Int4Weights(rows: rows, columns: columns, groupSize: groupSize, values: values, scaleBits: scales,
                           minimumBits: minimums)
    }

    /// The float32 weights, row-major (``Int4Weights/dequantized()`` of ``unpacked()``).
    public func dequantized() -> [Float] { unpacked().dequantized() }
}

extension Int8KernelVariant {
    /// Whether this CPU runs the variant's int4 kernels (`beats_q4_kernel_available`): AVX2 needs
    /// F16C as well, which every AVX2 CPU the project knows of has.
    public var supportsInt4: Bool { beats_q4_kernel_available(cValue) != 0 }

    /// Quantizes float rows for the int4 GEMM: int8 at ``Int4Kernels/activationLevels`` (±127) with
    /// one scale per row (`beats_quantize_rows_*`), then the group sums of the result
    /// (``Int4Kernels/activationGroupSums(_:leading:rows:columns:groupSize:into:leading:)``).
    public func quantizeRowsForInt4(_ input: UnsafePointer<Float>, leading inputStride: Int, rows: Int, columns: Int,
                                    into output: UnsafeMutablePointer<Int8>, leading outputStride: Int,
                                    scales: UnsafeMutablePointer<Float>, groupSums: UnsafeMutablePointer<Int32>,
                                    leading sumsStride: Int, groupSize: Int) throws(KernelError) {
        let levels = Int4Kernels.activationLevels
        let status: Int32
        switch self {
        case .scalar:
            status = beats_quantize_rows_scalar(input, inputStride, rows, columns, levels, output, outputStride, scales)
        case .avx2:
            status = beats_quantize_rows_avx2(input, inputStride, rows, columns, levels, output, outputStride, scales)
        case .avx512vnni:
            status = beats_quantize_rows_avx512(input, inputStride, rows, columns, levels, output, outputStride, scales)
        }
        try KernelError.check(status)
        try Int4Kernels.activationGroupSums(output, leading: outputStride, rows: rows, columns: columns,
                                            groupSize: groupSize, into: groupSums, leading: sumsStride)
    }

    /// `c[m][n] = aScales[m] · Σ_g (scale[n][g] · Σ_{k∈g} a[m][k]·q[n][k] + minimum[n][g] · groupSums[m][g])`
    /// plus `bias[n]` when given, for `m` in `rows` and `n` in `columns` (`beats_gemm_q4_*`, in the
    /// float order `beats_q4_kernels.h` defines; every variant gives the same bits). `groupSums` are
    /// the activations' group sums for the weights' group size, `sumsStride` apart. Allocates nothing.
    public func multiply(_ a: UnsafePointer<Int8>, leading aStride: Int, scales aScales: UnsafePointer<Float>,
                         groupSums: UnsafePointer<Int32>, leading sumsStride: Int, _ weights: PackedInt4Matrix,
                         bias: UnsafePointer<Float>? = nil, into c: UnsafeMutablePointer<Float>, leading cStride: Int,
                         rows: Range<Int>, columns: Range<Int>) throws(KernelError) {
        let packed = weights.storage
        let status: Int32
        switch self {
        case .scalar:
            status = beats_gemm_q4_scalar(a, aStride, aScales, groupSums, sumsStride, packed, bias, c, cStride,
                                          rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        case .avx2:
            status = beats_gemm_q4_avx2(a, aStride, aScales, groupSums, sumsStride, packed, bias, c, cStride,
                                        rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        case .avx512vnni:
            status = beats_gemm_q4_avx512vnni(a, aStride, aScales, groupSums, sumsStride, packed, bias, c, cStride,
                                              rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        }
        try KernelError.check(status)
    }
}
