import CBEATsKernels
import Testing

/// Exact float16 / bfloat16 → float32 conversion (`beats_half_to_float_rows_*`): every bit pattern,
/// in every variant this CPU runs, in the vector body and the scalar tail of a row.
@Suite("Half-precision conversion")
struct HalfConversionTests {
    /// All 65 536 patterns laid out as rows of `columns` (the last row padded with zeros); returns the
    /// patterns and the converted values, row by row.
    private func convertAll(_ variant: HalfConversionVariant, _ format: beats_half_format, columns: Int,
                            shift: Int = 0) -> (bits: [UInt16], values: [Float], status: Int32) {
        let stride = columns + 3
        let rows = (65_536 + columns - 1) / columns
        var bits = [UInt16](repeating: 0xFFFF, count: rows * stride)
        for index in 0..<(rows * columns) {
            bits[(index / columns) * stride + index % columns] = UInt16(truncatingIfNeeded: index + shift)
        }
        let (status, values) = variant.convert(format, bits, rows: rows, columns: columns, stride: stride)
        var denseBits = [UInt16](), denseValues = [Float]()
        for row in 0..<rows {
            denseBits += bits[(row * stride)..<(row * stride + columns)]
            denseValues += values[(row * stride)..<(row * stride + columns)]
        }
        return (denseBits, denseValues, status)
    }

    @Test("every float16 pattern converts as Float(Float16(bitPattern:)), bitwise", arguments: HalfConversionVariant.allCases)
    func float16(_ variant: HalfConversionVariant) {
        guard variant.isAvailable else {
            let (_, _, status) = convertAll(variant, BEATS_HALF_F16, columns: 64)
            #expect(status == BEATS_ERROR_UNAVAILABLE.rawValue)
            print("half conversion \(variant): NOT available on this CPU (compiled, not executed)")
            return
        }
        // 64 columns: every pattern in the vector body; 7 columns (shifted): every pattern in the tail.
        for (columns, shift) in [(64, 0), (7, 0), (7, 3), (37, 5)] {
            let (bits, values, status) = convertAll(variant, BEATS_HALF_F16, columns: columns, shift: shift)
            #expect(status == BEATS_OK.rawValue)
            var mismatches = 0
            var seen = Set<UInt16>()
            for (pattern, value) in zip(bits, values) {
                seen.insert(pattern)
                let expected = referenceHalfToFloat(pattern)
                if value.bitPattern != expected.bitPattern || value.bitPattern != beats_f16_to_float(pattern).bitPattern {
                    mismatches += 1
                    if mismatches <= 5 {
                        Issue.record("\(variant) f16 0x\(String(pattern, radix: 16)): \(value.bitPattern) vs \(expected.bitPattern)")
                    }
                }
            }
            #expect(seen.count == 65_536)
            #expect(mismatches == 0, "\(variant), \(columns) columns: \(mismatches) patterns differ")
        }
        // Spot values: the smallest subnormal, the largest finite, a signalling NaN made quiet.
        let (bits, values, _) = convertAll(variant, BEATS_HALF_F16, columns: 64)
        let value = { (pattern: UInt16) in values[bits.firstIndex(of: pattern)!] }
        #expect(value(0x0001) == 0x1p-24)
        #expect(value(0x7BFF) == 65504)
        #expect(value(0xFC00) == -.infinity)
        #expect(value(0x8000).bitPattern == 0x8000_0000)
        #expect(value(0x7C01).bitPattern == 0x7FC0_2000)
    }

    @Test("every bfloat16 pattern converts as its bits shifted left by 16, bitwise", arguments: HalfConversionVariant.allCases)
    func bfloat16(_ variant: HalfConversionVariant) {
        guard variant.isAvailable else {
            #expect(convertAll(variant, BEATS_HALF_BF16, columns: 64).status == BEATS_ERROR_UNAVAILABLE.rawValue)
            return
        }
        for (columns, shift) in [(64, 0), (15, 1), (37, 5)] {
            let (bits, values, status) = convertAll(variant, BEATS_HALF_BF16, columns: columns, shift: shift)
            #expect(status == BEATS_OK.rawValue)
            #expect(Set(bits).count == 65_536)
            let mismatches = zip(bits, values).filter { $0.1.bitPattern != referenceBFloat16ToFloat($0.0).bitPattern }
            #expect(mismatches.isEmpty, "\(variant), \(columns) columns: \(mismatches.count) patterns differ, first \(mismatches.first.map { String($0.0, radix: 16) } ?? "")")
        }
    }

    @Test("the AVX2 variant runs exactly where the CPU has AVX2, FMA and F16C")
    func availability() {
        let features = beats_cpu_features()
        #expect(HalfConversionVariant.portable.isAvailable)
        #if arch(x86_64)
        let avx2 = HalfConversionVariant.avx2
        #expect(avx2.isAvailable == (features & avx2.requiredFeatures == avx2.requiredFeatures))
        #else
        #expect(!HalfConversionVariant.avx2.isAvailable)
        #endif
        #expect(String(cString: beats_half_variant_name(BEATS_HALF_PORTABLE)) == "portable")
        #expect(String(cString: beats_half_variant_name(BEATS_HALF_AVX2)) == "avx2")
        #expect(String(cString: beats_half_variant_name(beats_half_variant(rawValue: 7))) == "unknown")
        #expect(beats_half_variant_available(beats_half_variant(rawValue: 7)) == 0)
    }

    @Test("argument errors; cells past the columns and outside the rows are untouched")
    func arguments() {
        for variant in HalfConversionVariant.allCases where variant.isAvailable {
            let bits: [UInt16] = [0x3C00, 0x4000, 0xFFFF, 0xC000, 0x3800, 0xFFFF]
            let (status, values) = variant.convert(BEATS_HALF_F16, bits, rows: 2, columns: 2, stride: 3)
            #expect(status == BEATS_OK.rawValue)
            #expect(values == [1, 2, -3, -2, 0.5, -3])
            let badFormat = variant.convert(beats_half_format(rawValue: 0), bits, rows: 2, columns: 2, stride: 3).status
            #expect(badFormat == BEATS_ERROR_INVALID_ARGUMENT.rawValue)
            let narrow = variant.convert(BEATS_HALF_F16, bits, rows: 2, columns: 4, stride: 3).status
            #expect(narrow == BEATS_ERROR_INVALID_ARGUMENT.rawValue)
            let empty = variant == .portable
                ? beats_half_to_float_rows_portable(BEATS_HALF_F16, nil, 0, 0, 5, nil, 0)
                : beats_half_to_float_rows_avx2(BEATS_HALF_F16, nil, 0, 0, 5, nil, 0)
            #expect(empty == BEATS_OK.rawValue)
        }
    }

    @Test("bfloat16 rounding of the BF16 GEMM's activations: nearest even, NaN quiet, subnormal to ±0")
    func activationRounding() {
        #expect(beats_float_to_bf16_activation(1) == 0x3F80)
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie: to even
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie: to even
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)  // rounds to +Inf
        #expect(beats_float_to_bf16_activation(.infinity) == 0x7F80)
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x7F80_0001)) == 0x7FC0)  // signalling NaN: quiet
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x8000_0001)) == 0x8000)  // subnormal: -0
        #expect(beats_float_to_bf16_activation(Float(bitPattern: 0x0080_0000)) == 0x0080)  // smallest normal
    }
}
