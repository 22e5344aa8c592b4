import CBEATsKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed int8 kernel call: the C status and its description (`beats_status_description`).
public struct KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The `beats_status` the C function returned.
    public let status: Int32

    /// A short English description of the status (`beats_status_description`).
    public var description: String { String(cString: beats_status_description(status)) }

    /// Throws unless `status` is `BEATS_OK`.
    @inline(__always)
    static func check(_ status: Int32) throws(KernelError) {
        if status != BEATS_OK.rawValue { throw KernelError(status: status) }
    }
}

/// Which build of the int8 GEMM and activation quantizer (`beats_kernels.h`) runs. A model picks
/// one when it is built (``preferred`` unless told otherwise) and passes it to every call, so no
/// process-wide selection exists that two models or a test could disturb.
public enum Int8KernelVariant: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain C, any CPU.
    case scalar
    /// AVX2 (`vpmaddubsw`), with 7-bit activations.
    case avx2
    /// AVX-512 VNNI (`vpdpbusd`), with full 8-bit activations.
    case avx512vnni

    /// The best variant this CPU runs, or the one the `BEATS_KERNEL` environment variable names
    /// (`scalar`, `avx2`, `avx512vnni`) when this CPU runs it. Read once per process.
    public static let preferred: Int8KernelVariant = {
        if let requested = getenv("BEATS_KERNEL").map({ String(cString: $0) }), let variant = Int8KernelVariant(rawValue: requested),
           variant.isAvailable {
            return variant
        }
        return allCases.last { $0.isAvailable } ?? .scalar
    }()

    /// The variant's name, as `BEATS_KERNEL` spells it.
    public var description: String { rawValue }

    /// Whether this CPU (and this build) can run the variant.
    public var isAvailable: Bool { beats_kernel_available(cValue) != 0 }

    /// Largest activation level the quantizer produces: ±63 (7 bits) on AVX2, where an exact
    /// 7-bit × 8-bit product takes three instructions per 32 multiply-adds instead of four (15–60 %
    /// faster per GEMM, as PyTorch's x86 int8 does), and the full ±127 where VNNI makes both the
    /// same speed. Measured on the fixtures: features cosine vs the official float32 0.99991
    /// (7-bit) and 0.99997 (8-bit).
    public var activationLevels: Int32 {
        self == .avx512vnni ? Int32(BEATS_ACTIVATION_LEVELS_INT8) : Int32(BEATS_ACTIVATION_LEVELS_7BIT)
    }

    var cValue: beats_kernel_variant {
        switch self {
        case .scalar: return BEATS_KERNEL_SCALAR
        case .avx2: return BEATS_KERNEL_AVX2
        case .avx512vnni: return BEATS_KERNEL_AVX512VNNI
        }
    }

    /// Quantizes `rows` float rows to int8 with one scale per row, `q = round(x · levels / max|x|)`
    /// (`beats_quantize_rows_*`).
    public func quantizeRows(_ input: UnsafePointer<Float>, leading inputStride: Int, rows: Int, columns: Int,
                             into output: UnsafeMutablePointer<Int8>, leading outputStride: Int,
                             scales: UnsafeMutablePointer<Float>) throws(KernelError) {
        let levels = Int32(activationLevels)
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
    }

    /// `c[m][n] = aScales[m] · wScales[n] · Σ_k a[m][k] · w[n][k]` for `m` in `rows` and `n` in
    /// `columns` (`beats_gemm_s8_*`), without a bias.
    public func multiply(_ a: UnsafePointer<Int8>, leading aStride: Int, scales aScales: UnsafePointer<Float>,
                         _ weights: PackedInt8Matrix, into c: UnsafeMutablePointer<Float>, leading cStride: Int,
                         rows: Range<Int>, columns: Range<Int>) throws(KernelError) {
        let packed = UnsafeRawPointer(weights.storage)
        let status: Int32
        switch self {
        case .scalar:
            status = beats_gemm_s8_scalar(a, aStride, aScales, packed, weights.scales, nil, c, cStride,
                                          rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        case .avx2:
            status = beats_gemm_s8_avx2(a, aStride, aScales, packed, weights.scales, nil, c, cStride,
                                        rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        case .avx512vnni:
            status = beats_gemm_s8_avx512vnni(a, aStride, aScales, packed, weights.scales, nil, c, cStride,
                                              rows.lowerBound, rows.upperBound, columns.lowerBound, columns.upperBound)
        }
        try KernelError.check(status)
    }
}

/// An int8 weight matrix [rows = outputs, columns = inputs] packed into the panel layout the
/// GEMM kernels read (`beats_pack_weights`), with its per-row float32 scales.
public final class PackedInt8Matrix: @unchecked Sendable {
    /// Output features (weight rows).
    public let rows: Int
    /// Input features (weight columns).
    public let columns: Int
    /// Columns of the output one packed panel covers: bands of output columns split at multiples
    /// of it.
    public static let panelColumns = Int(BEATS_PANEL_COLUMNS)
    /// Per-row scales: `weight[r][c] ≈ values[r][c] · scales[r]`.
    public let scales: UnsafePointer<Float>
    let storage: UnsafeMutableRawPointer
    /// Keeps `scales` alive (the mapped file they point into).
    private let scalesOwner: AnyObject

    /// Packs `values` (row-major, `stride` between rows) and keeps `scales` by reference.
    public init(values: UnsafePointer<Int8>, stride: Int, rows: Int, columns: Int, scales: UnsafePointer<Float>,
                scalesOwner: AnyObject) throws(KernelError) {
        let size = beats_packed_weights_size(rows, columns)
        guard size > 0 else { throw KernelError(status: BEATS_ERROR_TOO_LARGE.rawValue) }
        storage = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Int(BEATS_PACKED_ALIGNMENT))
        let status = beats_pack_weights(values, stride, rows, columns, storage, size)
        guard status == BEATS_OK.rawValue else {
            storage.deallocate()
            throw KernelError(status: status)
        }
        self.rows = rows
        self.columns = columns
        self.scales = scales
        self.scalesOwner = scalesOwner
    }

    deinit { storage.deallocate() }
}

/// The CPU features the kernels test for, by name (`beats_cpu_features`), for reports.
public enum CPUFeatures {
    /// The features this CPU has and the OS enables, lowercase (`avx2`, `fma`, … `avxvnni`).
    public static var names: [String] {
        let flags = beats_cpu_features()
        let names: [(UInt32, String)] = [
            (UInt32(BEATS_CPU_AVX2), "avx2"), (UInt32(BEATS_CPU_FMA), "fma"), (UInt32(BEATS_CPU_F16C), "f16c"),
            (UInt32(BEATS_CPU_AVX512F), "avx512f"), (UInt32(BEATS_CPU_AVX512BW), "avx512bw"),
            (UInt32(BEATS_CPU_AVX512VL), "avx512vl"), (UInt32(BEATS_CPU_AVX512VNNI), "avx512vnni"),
            (UInt32(BEATS_CPU_AVXVNNI), "avxvnni"),
        ]
        return names.filter { flags & $0.0 != 0 }.map(\.1)
    }
}
