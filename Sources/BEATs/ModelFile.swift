import BEATsCheckpoint
import BEATsCore
import BEATsFormat

/// Opens any supported model file by its content (magic bytes), never by its extension.
public enum ModelFile {
    /// The weights in `path`: a PyTorch zip checkpoint, a pre-1.6 legacy checkpoint, a
    /// safetensors file (config from `config.json` beside it) or a native `.beatsw` file. A file that is none of them is refused with what it looks like instead
    /// (audio given where a model was expected, say).
    public static func open(path: String) throws -> any WeightStore {
        // Mapping costs nothing until pages are touched; the first bytes decide the reader.
        let file = try MappedFile(path: path)
        let head = UnsafeRawBufferPointer(rebasing: file.bytes.prefix(16))
        if PyTorchCheckpoint.recognizes(head) {
            return try PyTorchCheckpoint.open(file: file)
        }
        if NativeModelFile.recognizes(head) {
            return try NativeModelFile.open(file: file)
        }
        if SafetensorsFile.recognizes(head) {
            return try SafetensorsFile.open(file: file)
        }
        if let audio = AudioSignature.name(of: head) {
            throw BEATsError.audioInsteadOfModel(path: path, format: audio)
        }
        throw CheckpointError.notACheckpoint(path: path, firstBytes: Array(head.prefix(8)))
    }

    /// ``open(path:)``, then, with `verifyChecksums`, every checksum the file carries
    /// (``WeightStore/verifyChecksums()``): a pass over the whole file before it is used.
    public static func open(path: String, verifyChecksums: Bool) throws -> any WeightStore {
        let store = try open(path: path)
        if verifyChecksums { try store.verifyChecksums() }
        return store
    }
}

/// Recognises common audio containers by their first bytes, to say "this is audio" when one is
/// given where a model was expected.
enum AudioSignature {
    static func name(of head: UnsafeRawBufferPointer) -> String? {
        func starts(_ text: String, at offset: Int = 0) -> Bool {
            let bytes = Array(text.utf8)
            guard head.count >= offset + bytes.count else { return false }
            return (0..<bytes.count).allSatisfy { head[offset + $0] == bytes[$0] }
        }
        if starts("RIFF") && starts("WAVE", at: 8) { return "WAV" }
        if starts("RF64") || starts("riff") { return "WAV" }
        if starts("fLaC") { return "FLAC" }
        if starts("OggS") { return "Ogg" }
        if starts("FORM") { return "AIFF" }
        if starts("ID3") { return "MP3" }
        if head.count >= 2, head[0] == 0xFF, head[1] & 0xE0 == 0xE0 { return "MP3" }
        return nil
    }
}
