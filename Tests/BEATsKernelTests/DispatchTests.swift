import CBEATsKernels
import Testing

/// What the C layer says about its variants. Which variant a model runs is chosen in Swift
/// (`Int8KernelVariant.preferred`, BEATsKernels) and passed to every call; nothing here is process-wide.
@Suite("Kernel variants")
struct DispatchTests {
    @Test("availability follows the CPU features; scalar runs everywhere")
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
        // The record of what this machine can test.
        let report = KernelVariant.allCases.map { "\($0): \($0.isAvailable ? "runs here" : "NOT available on this CPU (compiled, not executed)")" }
        print("CPU features 0x\(String(features, radix: 16)); " + report.joined(separator: "; "))
    }

    @Test("variant names are the ones BEATS_KERNEL accepts; other values are unknown and unavailable")
    func names() {
        for variant in KernelVariant.allCases {
            #expect(String(cString: beats_kernel_variant_name(variant.cValue)) == variant.rawValue)
        }
        for value: UInt32 in [0, 4] {
            #expect(String(cString: beats_kernel_variant_name(beats_kernel_variant(rawValue: value))) == "unknown")
            #expect(beats_kernel_available(beats_kernel_variant(rawValue: value)) == 0)
        }
        #expect(String(cString: beats_status_description(KernelStatus.weightOutOfRange)).contains("-127, 127"))
    }
}
