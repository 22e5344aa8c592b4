import BEATsCheckpoint
import BEATsCore
import BEATsFormat

/// Opens any model file by its content (magic bytes), never by extension: a PyTorch zip
/// checkpoint, a legacy checkpoint or a native file.
enum ModelFile {
    static func open(path: String) throws -> any WeightStore {
        // Mapping costs nothing until pages are touched; the first bytes decide the reader.
        let file = try MappedFile(path: path)
        let head = UnsafeRawBufferPointer(rebasing: file.bytes.prefix(16))
        if PyTorchCheckpoint.recognizes(head) {
            return try PyTorchCheckpoint.open(file: file)
        }
        if NativeModelFile.recognizes(head) {
            return try NativeModelFile.open(file: file)
        }
        throw CheckpointError.notACheckpoint(path: path, firstBytes: Array(head.prefix(8)))
    }
}
