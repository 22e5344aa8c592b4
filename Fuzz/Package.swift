// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for the readers that take hostile input. Kept out of the main package so that
// `swift build` / `swift test` there never build them nor need the fuzzer runtime. Build and run
// them with `Fuzz/run.sh TARGET SECONDS` (which passes `--sanitize=fuzzer --sanitize=address` to
// every module, the toolkit's included, so coverage guides the fuzzer through the readers).
let fuzzTargets = ["FuzzZip", "FuzzPickle", "FuzzCheckpoint", "FuzzNative", "FuzzWAV", "FuzzSafetensors"]

let package = Package(
    name: "BEATsFuzz",
    dependencies: [
        .package(name: "BEATsToolkit", path: ".."),
    ],
    targets: fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: [.product(name: "BEATsStages", package: "BEATsToolkit")],
            // The entry point is LLVMFuzzerTestOneInput; libFuzzer supplies main().
            swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    },
    swiftLanguageModes: [.v6]
)
