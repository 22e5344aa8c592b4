import CBEATsKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The typed Swift layer over the float16 / bfloat16 kernels (`beats_half_kernels.h`): exact row
// conversion, and products x · Wᵀ on 16-bit weights used in place (no float32 copy of the model).
// The arithmetic of each product and its summation order are documented in `beats_half_kernels.h`.

/// The 16-bit element type of a half-precision weight.
public enum HalfFormat: String, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary16 (`torch.float16`).
    case float16
    /// bfloat16, the upper half of a binary32 (`torch.bfloat16`).
    case bfloat16

    public var description: String { rawValue }

    var cValue: beats_half_format { self == .float16 ? BEATS_HALF_F16 : BEATS_HALF_BF16 }

    /// The float32 value of one bit pattern, exactly (`beats_f16_to_float` / `beats_bf16_to_float`):
    /// the definition every variant's conversion matches bit for bit, equal to Swift's
    /// `Float(Float16(bitPattern:))` for float16 (NaNs made quiet, payload kept) and to
    /// `Float(bitPattern: UInt32(bits) << 16)` for bfloat16.
    public func float(fromBits bits: UInt16) -> Float {
        self == .float16 ? beats_f16_to_float(bits) : beats_bf16_to_float(bits)
    }
}

/// Which product multiplies by half-precision weights. A model picks one when it is built
/// (``preferred`` unless told otherwise) and passes it to every call, so no process-wide selection
/// exists that two models or a test could disturb.
public enum HalfKernelVariant: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Any CPU: chunks of weights are converted (portable C) into the scratch and multiplied by the
    /// caller's sgemm (`beats_half_gemm_sgemm`). The path for CPUs without AVX2, where the BLAS is the
    /// fast engine.
    case portable
    /// AVX2 + FMA + F16C: a GEMM whose weight packing converts (`beats_half_gemm_avx2`). Exact
    /// products, about 5–15 % faster than sgemm on float32 weights on the development machine.
    case avx2
    /// AVX512-BF16 (`vdpbf16ps`) for bfloat16 weights (`beats_gemm_bf16_avx512`): activations are
    /// rounded to bfloat16, adding ≈1.7·10⁻³ relative error to the outputs. float16 weights run on
    /// ``avx2`` (see ``variant(for:)``).
    case avx512bf16

    /// The best variant this CPU runs, or the one the `BEATS_KERNEL` environment variable names when
    /// this CPU runs it (`portable` — or `scalar`, the int8 kernels' name for the same — `avx2`,
    /// `avx512bf16`; other values, such as `avx512vnni`, leave the choice to the CPU). Read once per
    /// process.
    public static let preferred: HalfKernelVariant = {
        if let requested = getenv("BEATS_KERNEL").map({ String(cString: $0) }) {
            let named = requested == "scalar" ? HalfKernelVariant.portable : HalfKernelVariant(rawValue: requested)
            if let named, named.isAvailable { return named }
        }
        return allCases.last { $0.isAvailable } ?? .portable
    }()

    /// The variant's name, as `BEATS_KERNEL` spells it.
    public var description: String { rawValue }

    /// Whether this CPU (and this build) can run the variant.
    public var isAvailable: Bool {
        switch self {
        case .portable: return true
        case .avx2: return beats_half_variant_available(BEATS_HALF_AVX2) != 0
        case .avx512bf16: return beats_gemm_bf16_avx512_available() != 0
        }
    }

    /// The variant that runs weights of `format`: ``avx512bf16`` only multiplies bfloat16 weights, so
    /// for float16 it is ``avx2`` where available, else ``portable``; the others run both formats.
    public func variant(for format: HalfFormat) -> HalfKernelVariant {
        guard self == .avx512bf16, format == .float16 else { return self }
        return HalfKernelVariant.avx2.isAvailable ? .avx2 : .portable
    }

    /// Output columns (weight rows) per unit of work: column ranges that start on multiples of it
    /// split one product across threads best (8 for sgemm bands, 16 for an AVX2 panel, 32 for a
    /// BF16 panel pair). Any range is correct.
    public var columnAlignment: Int {
        switch self {
        case .portable: return 8
        case .avx2: return Int(BEATS_HALF_AVX2_PANEL_COLUMNS)
        case .avx512bf16: return Int(BEATS_BF16_PANEL_COLUMNS)
        }
    }

    /// Whether results depend only on the inputs, not on how the output columns are split across
    /// threads: true for the kernels of our own (each output's summation order is fixed by K), false
    /// for ``portable``, whose sgemm may order a sum differently in a narrower band.
    public var isSplitInvariant: Bool { self != .portable }

    /// Converts `rows` rows of `columns` 16-bit values (row r at `source + r·sourceStride`) to
    /// float32 (row r at `output + r·outputStride`), exactly (`beats_half_to_float_rows_*`; ``avx2``
    /// and ``avx512bf16`` use the AVX2 conversion).
    public func convertRows(_ format: HalfFormat, _ source: UnsafePointer<UInt16>, leading sourceStride: Int, rows: Int,
                            columns: Int, into output: UnsafeMutablePointer<Float>,
                            leading outputStride: Int) throws(KernelError) {
        let status: Int32
        switch self {
        case .portable:
            status = beats_half_to_float_rows_portable(format.cValue, source, sourceStride, rows, columns, output, outputStride)
        case .avx2, .avx512bf16:
            status = beats_half_to_float_rows_avx2(format.cValue, source, sourceStride, rows, columns, output, outputStride)
        }
        try KernelError.check(status)
    }

    /// `c[m][n] = Σ_k x[m][k] · w[n][k]` for `m < rows` and `n` in `columns` (no bias; previous
    /// contents of those outputs are ignored), single-threaded, with `scratch` (at least
    /// ``HalfScratch/bytesPerLane`` bytes, 64-byte aligned) owned by this call. `sgemm` (a reentrant
    /// `cblas_sgemm`, e.g. single-threaded OpenBLAS) is used by ``portable`` only and may be nil for
    /// the others. Throws ``KernelError`` with `BEATS_ERROR_UNAVAILABLE` when this CPU cannot run the
    /// variant or ``avx512bf16`` gets float16 weights (ask ``variant(for:)`` first), and
    /// `BEATS_ERROR_INVALID_ARGUMENT` for ranges or strides that do not fit, or a nil `sgemm` on
    /// ``portable``.
    public func multiply(_ x: UnsafePointer<Float>, leading xStride: Int, rows: Int, _ weights: HalfMatrix,
                         into c: UnsafeMutablePointer<Float>, leading cStride: Int, columns: Range<Int>,
                         scratch: UnsafeMutableRawPointer, sgemm: SGEMMFunction?) throws(KernelError) {
        let status: Int32
        let size = HalfScratch.bytesPerLane
        switch self {
        case .portable:
            guard let sgemm else { throw KernelError(status: BEATS_ERROR_INVALID_ARGUMENT.rawValue) }
            status = beats_half_gemm_sgemm(BEATS_HALF_PORTABLE, weights.format.cValue, sgemm, x, xStride, rows,
                                           weights.values, weights.stride, weights.columns, c, cStride,
                                           columns.lowerBound, columns.upperBound, scratch, size)
        case .avx2:
            status = beats_half_gemm_avx2(weights.format.cValue, x, xStride, rows, weights.values, weights.stride,
                                          weights.columns, c, cStride, columns.lowerBound, columns.upperBound, scratch, size)
        case .avx512bf16:
            guard weights.format == .bfloat16 else { throw KernelError(status: BEATS_ERROR_UNAVAILABLE.rawValue) }
            status = beats_gemm_bf16_avx512(x, xStride, weights.values, weights.stride, weights.rows, weights.columns,
                                            c, cStride, 0, rows, columns.lowerBound, columns.upperBound, scratch, size)
        }
        try KernelError.check(status)
    }
}

/// `cblas_sgemm` with its enumerations as `Int32` (`beats_sgemm_function`): the type of the
/// function the runtime loads from OpenBLAS.
public typealias SGEMMFunction = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?,
                                                 Int32, UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?,
                                                 Int32) -> Void

/// A half-precision weight matrix used in place: `rows` (outputs) × `columns` (inputs) 16-bit values
/// of `format`, row-major, row r at `values + r·stride`. A view: whoever makes it keeps the memory
/// alive (the runtime's `HalfWeight` holds the mapped file).
public struct HalfMatrix: @unchecked Sendable {
    public let values: UnsafePointer<UInt16>
    public let rows: Int
    public let columns: Int
    public let stride: Int
    public let format: HalfFormat

    public init(values: UnsafePointer<UInt16>, rows: Int, columns: Int, stride: Int? = nil, format: HalfFormat) {
        precondition(rows >= 0 && columns >= 0 && (stride ?? columns) >= columns, "half matrix shape")
        self.values = values
        self.rows = rows
        self.columns = columns
        self.stride = stride ?? columns
        self.format = format
    }
}

/// Scratch for the half-precision products: `lanes` blocks of ``bytesPerLane`` bytes, 64-byte
/// aligned, one per thread multiplying at once (lane i at `base + i · bytesPerLane`). Either owned
/// (``init(lanes:)``, allocated and zeroed once) or a view of memory someone else owns
/// (``init(wrapping:lanes:)``, e.g. a region of a forward pass's arena). The products keep nothing in
/// it between calls.
public final class HalfScratch: @unchecked Sendable {
    /// Bytes one product needs (`BEATS_HALF_SCRATCH_BYTES`, 1 MiB).
    public static let bytesPerLane = Int(BEATS_HALF_SCRATCH_BYTES)
    /// Alignment of every lane's block (`BEATS_HALF_SCRATCH_ALIGNMENT`, 64 bytes).
    public static let alignment = Int(BEATS_HALF_SCRATCH_ALIGNMENT)

    public let lanes: Int
    public let base: UnsafeMutableRawPointer
    private let owned: Bool

    /// Allocates `lanes` blocks.
    public init(lanes: Int) {
        precondition(lanes >= 1, "at least one lane")
        self.lanes = lanes
        base = UnsafeMutableRawPointer.allocate(byteCount: lanes * Self.bytesPerLane, alignment: Self.alignment)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: lanes * Self.bytesPerLane)
        owned = true
    }

    /// A view of `lanes · bytesPerLane` bytes at `base` (64-byte aligned) that the caller keeps alive
    /// and lends to no one else while products use it.
    public init(wrapping base: UnsafeMutableRawPointer, lanes: Int) {
        precondition(lanes >= 1, "at least one lane")
        precondition(Int(bitPattern: base) % Self.alignment == 0, "half scratch must be 64-byte aligned")
        self.lanes = lanes
        self.base = base
        owned = false
    }

    /// Lane `lane`'s block.
    public func pointer(lane: Int) -> UnsafeMutableRawPointer {
        precondition(lane >= 0 && lane < lanes, "lane \(lane) of \(lanes)")
        return base + lane * Self.bytesPerLane
    }

    deinit { if owned { base.deallocate() } }
}
