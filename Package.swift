// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "BEATsToolkit",
    platforms: [.macOS(.v13)],
    products: [
        // What an app adds: `.product(name: "BEATs", package: "beats")` and `import BEATs`.
        .library(name: "BEATs", targets: ["BEATs"]),
        // The stages underneath, for users who need them (readers, converter, runtime on fbank input).
        .library(name: "BEATsStages", targets: ["BEATsCore", "BEATsCheckpoint", "BEATsFormat", "BEATsRuntime"]),
        .executable(name: "beats", targets: ["beats"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Thin C layer over zlib (Debian's zlib1g-dev, via pkg-config). OpenBLAS (libopenblas0) is
        // not linked: the runtime loads it when it builds a model (Model/OpenBLAS.swift says why).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Hand-written kernels (int8 GEMM: AVX-512 VNNI, AVX2, scalar; fused float32 row kernels;
        // weight quantization), chosen at run time, and their one thin typed Swift layer.
        .target(name: "CBEATsKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "BEATsKernels", dependencies: ["CBEATsKernels"]),
        // SHA-256 block function (x86 SHA extensions, portable fallback) for the converter's source digest.
        .target(name: "CSHA256", cSettings: [.unsafeFlags(["-O3"])]),

        // Shared vocabulary: mapped files, bounds-checked byte reading, dtypes, tensors.
        .target(name: "BEATsCore"),
        // Stage 1: PyTorch checkpoints (zip + zlib + data-only pickle, legacy stream), BEATs view.
        .target(name: "BEATsCheckpoint", dependencies: ["BEATsCore", "CZlib"]),
        // Stage 2: the native memory-mappable weight file, converter, int8 quantization. Takes any
        // WeightStore, so it does not depend on the checkpoint reader.
        .target(name: "BEATsFormat", dependencies: ["BEATsCore", "CSHA256", "BEATsKernels"]),
        // Stage 3: WAV, resampling, Kaldi fbank, the BEATs encoder and heads, over any WeightStore.
        .target(name: "BEATsRuntime", dependencies: ["BEATsCore", "BEATsKernels"]),
        // Stage 4: the library apps import: open any model file, decode audio, typed results.
        .target(name: "BEATs", dependencies: ["BEATsCore", "BEATsCheckpoint", "BEATsFormat", "BEATsRuntime", "BEATsKernels"]),
        // Stage 5: the `beats` command line, argument parsing over the library.
        .executableTarget(name: "beats", dependencies: [
            "BEATs",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Fixture paths for the tests (not shipped).
        .target(name: "BEATsTestSupport", dependencies: ["BEATsCore"], path: "Tests/BEATsTestSupport"),
        .testTarget(name: "BEATsCoreTests", dependencies: ["BEATsCore", "BEATsTestSupport"]),
        .testTarget(name: "BEATsCheckpointTests", dependencies: ["BEATsCheckpoint", "BEATsCore", "BEATsTestSupport"]),
        .testTarget(name: "BEATsFormatTests", dependencies: ["BEATsFormat", "BEATsCheckpoint", "BEATsCore", "BEATsTestSupport"]),
        .testTarget(name: "BEATsRuntimeTests", dependencies: ["BEATsRuntime", "BEATsKernels", "CBEATsKernels", "BEATsFormat", "BEATsCheckpoint", "BEATsCore", "BEATsTestSupport"]),
        .testTarget(name: "BEATsTests", dependencies: ["BEATs", "BEATsTestSupport"]),
        .testTarget(name: "BEATsKernelTests", dependencies: ["CBEATsKernels", "BEATsTestSupport"]),
        .testTarget(name: "BEATsCLITests", dependencies: ["BEATsCore", "BEATsTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
