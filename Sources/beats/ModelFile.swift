import BEATsCore

/// Opens any model file by its content (magic bytes), never by extension: a PyTorch zip
/// checkpoint, a legacy checkpoint or a native file.
enum ModelFile {
    static func open(path: String) throws -> any WeightStore {
        // Filled in as the readers land: PyTorchCheckpoint.open(path:) and NativeModelFile.open(path:).
        throw CommandError("\(path): no reader is available yet")
    }
}
