import BEATsKernels

/// What the runtime runs on, in one place for benchmark reports and diagnostics: the OpenBLAS
/// it loaded (through ``BLASBackend``, the one wrapper of its C API) and the CPU features and
/// kernel variants it picks at run time.
public enum RuntimeEnvironment {
    /// The int8 GEMM variant new models use on this CPU (``Int8KernelVariant/preferred``).
    public static var int8Kernel: Int8KernelVariant { .preferred }
    /// The float32 row-kernel variant new models use on this CPU.
    public static var rowKernels: FloatKernelVariant { .best }
    /// CPU features the kernels test for, by name.
    public static var cpuFeatures: [String] { CPUFeatures.names }
}
