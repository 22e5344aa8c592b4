import CBEATsKernels

/// What the compute libraries report about this machine, for benchmark reports. OpenBLAS facts
/// come from ``BLASBackend``, the runtime's one wrapper of the OpenBLAS C API.
public enum RuntimeEnvironment {
    /// `openblas_get_config()`: version, build options and the core it was built/targeted for.
    public static var openBLASConfig: String { BLASBackend.configuration }
    /// `openblas_get_corename()`: the kernel set OpenBLAS chose at run time (honours OPENBLAS_CORETYPE).
    public static var openBLASCore: String { BLASBackend.coreName }
    public static var openBLASThreads: Int { BLASBackend.threadCount }
    /// The OpenBLAS file the runtime loaded (it is loaded, not linked: see `OpenBLAS`).
    public static var openBLASLibrary: String { BLASBackend.library }
    /// The int8 GEMM variant the dispatcher selects on this CPU (`beats_kernel_name()`).
    public static var int8KernelName: String { String(cString: beats_kernel_name()) }

    /// CPU features the int8 kernels test for, by name.
    public static var cpuFeatures: [String] {
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
