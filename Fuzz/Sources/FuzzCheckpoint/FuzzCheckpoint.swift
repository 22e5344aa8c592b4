import BEATsCheckpoint
import BEATsCore

/// The whole checkpoint reader as `beats inspect` / `beats tensor` / `beats convert` use it:
/// open (zip or legacy), the BEATs view, every tensor's values, every CRC.
///
/// Every CRC-32 in a central directory record is zeroed first ("not written", which torch also
/// does): otherwise nearly every mutation of `data.pkl` would stop at its checksum and the
/// fuzzer would never reach the pickle inside a checkpoint. Checksum mismatches are the zip
/// target's business (and unit tests').
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    zeroCentralDirectoryChecksums(&bytes)
    let file = MappedFile(path: "fuzz.pt", copying: bytes)
    let limits = PyTorchCheckpoint.Limits(zip: ZipLimits(maximumInflatedBytes: 8 << 20))
    guard let checkpoint = try? PyTorchCheckpoint.open(file: file, limits: limits) else { return 0 }
    _ = checkpoint.kind
    _ = checkpoint.config.values
    _ = checkpoint.labels.count
    // What `beats inspect` computes from metadata alone, in plain (trapping) arithmetic: every
    // size the reader accepted must be usable as it is.
    var totalElements = 0
    var totalBytes = 0
    for name in checkpoint.tensorNames {
        guard let record = checkpoint.tensorRecord(named: name) else { continue }
        let elements = record.shape.reduce(1, *)
        totalElements += elements
        totalBytes += elements * record.dtype.byteWidth
    }
    withExtendedLifetime((totalElements, totalBytes)) {}
    for name in checkpoint.tensorNames {
        guard let tensor = try? checkpoint.tensor(named: name) else { continue }
        _ = try? tensor.floats()
        _ = tensor.packedLittleEndianBytes()
    }
    _ = try? checkpoint.verifyChecksums()
    return 0
}

/// Sets the CRC field (offset 16) of everything that looks like a central directory record to 0.
func zeroCentralDirectoryChecksums(_ bytes: inout [UInt8]) {
    guard bytes.count >= 46 else { return }
    for index in 0...(bytes.count - 46)
    where bytes[index] == 0x50 && bytes[index + 1] == 0x4B && bytes[index + 2] == 0x01 && bytes[index + 3] == 0x02 {
        for offset in 16..<20 { bytes[index + offset] = 0 }
    }
}
