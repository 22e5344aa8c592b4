// swift-tools-version:6.1
import PackageDescription

// An app's view of the toolkit: one dependency, one product, `import BEATs`.
let package = Package(
    name: "Tagger",
    platforms: [.macOS(.v13)],
    dependencies: [
        // An app would write `.package(url: "https://…/beats.git", from: "0.3.0")`.
        .package(name: "BEATsToolkit", path: "../.."),
    ],
    targets: [
        // `tagger MODEL AUDIO… [--concurrency N]`: one JSON line of top-5 labels per file.
        .executableTarget(name: "tagger", dependencies: [.product(name: "BEATs", package: "BEATsToolkit")]),
        // The README's "Use from Swift" snippet, compiled here so that it stays true.
        .executableTarget(name: "readme-snippet", dependencies: [.product(name: "BEATs", package: "BEATsToolkit")]),
        // The code of the DocC article (Sources/BEATs/BEATs.docc/GettingStarted.md), compiled only.
        .executableTarget(name: "getting-started", dependencies: [.product(name: "BEATs", package: "BEATsToolkit")]),
    ],
    swiftLanguageModes: [.v6]
)
