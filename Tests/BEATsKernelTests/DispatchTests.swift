import CBEATsKernels
import Testing

/// Serialized: these tests change and observe the process-wide kernel selection.
@Suite("Kernel dispatch", .serialized)
struct DispatchTests {
    @Test("availability follows the CPU features; the dispatcher never selects an unavailable variant")
    func availabilityFollowsFeatures() {
        let features = beats_cpu_features()
        #expect(KernelVariant.scalar.isAvailable)
        #if arch(x86_64)
        for variant in KernelVariant.allCases {
            let hasFeatures = features & variant.requiredFeatures == variant.requiredFeatures
            #expect(variant.isAvailable == hasFeatures, "\(variant)")
        }
        #else
        #expect(!KernelVariant.avx2.isAvailable && !KernelVariant.avx512vnni.isAvailable)
        #endif
        let selected = beats_kernel_selected()
        #expect(beats_kernel_available(selected) != 0)
        #expect(selected != BEATS_KERNEL_AUTO)
        // The record of what this machine can test.
        let report = KernelVariant.allCases.map { "\($0): \($0.isAvailable ? "runs here" : "NOT available on this CPU (compiled, not executed)")" }
        print("CPU features 0x\(String(features, radix: 16)); dispatcher uses \(String(cString: beats_kernel_name())); " + report.joined(separator: "; "))
    }

    @Test("automatic choice is the best available variant")
    func automaticChoiceIsBest() {
        #expect(beats_force_kernel(BEATS_KERNEL_AUTO) == KernelStatus.ok)
        let best: KernelVariant = KernelVariant.avx512vnni.isAvailable ? .avx512vnni : (KernelVariant.avx2.isAvailable ? .avx2 : .scalar)
        #expect(String(cString: beats_kernel_name()) == best.rawValue)
        #expect(beats_kernel_selected() == best.cValue)
    }

    @Test("forcing a variant switches every dispatching function; an unavailable one is refused")
    func forcing() throws {
        defer { _ = beats_force_kernel(BEATS_KERNEL_AUTO) }
        let problem = GemmProblem.random(m: 9, n: 40, k: 100, seed: 21)
        let packed = try problem.packed()
        var reference = [Float](repeating: 0, count: 9 * 40)
        #expect(KernelVariant.scalar.gemm(problem, packed: packed, into: &reference, rows: 0..<9, columns: 0..<40, flags: 1) == KernelStatus.ok)
        for variant in KernelVariant.allCases {
            let before = beats_kernel_selected()
            let status = beats_force_kernel(variant.cValue)
            guard variant.isAvailable else {
                #expect(status == KernelStatus.unavailable)
                #expect(beats_kernel_selected() == before, "a refused request changes nothing")
                continue
            }
            #expect(status == KernelStatus.ok)
            #expect(String(cString: beats_kernel_name()) == variant.rawValue)
            var c = [Float](repeating: 0, count: 9 * 40)
            let dispatched = problem.activations.withUnsafeBufferPointer { a in
                beats_gemm_s8(a.baseAddress, problem.activationStride, problem.activationScales, packed.pointer,
                              problem.weightScales, problem.bias, &c, 40, 0, 9, 0, 40, 1)
            }
            #expect(dispatched == KernelStatus.ok)
            #expect(sameBits(c, reference), "\(variant)")
        }
        #expect(String(cString: beats_kernel_variant_name(BEATS_KERNEL_AUTO)) == "auto")
        #expect(String(cString: beats_status_description(KernelStatus.weightOutOfRange)).contains("-127, 127"))
    }
}
