import BEATsCore
import BEATsFormat

/// The native format reader as `beats check` / `beats tensor` / the runtime use it: open
/// (preamble, header, layout), every checksum, every tensor's values and int8 matrices.
///
/// The header's XXH64 (offset 24) is recomputed first whenever the preamble's length field
/// points inside the input: otherwise nearly every mutation of the header would stop at the
/// checksum and the fuzzer would never reach the header decoder. A wrong checksum is refused
/// before anything else is read (unit tests cover that).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNative(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    fixHeaderChecksum(&bytes)
    let file = MappedFile(path: "fuzz.beatsw", copying: bytes)
    guard let model = try? NativeModelFile.open(file: file) else { return 0 }
    _ = model.kind
    _ = model.config.values
    _ = model.labels.count
    _ = model.checksumFailures()
    // What `beats inspect` computes from the header, in plain (trapping) arithmetic.
    var totalElements = 0
    var totalBytes = 0
    for entry in model.header.tensors {
        totalElements += entry.shape.reduce(1, *)
        totalBytes += entry.storedBytes
    }
    withExtendedLifetime((totalElements, totalBytes)) {}
    for name in model.tensorNames {
        _ = model.entry(named: name)
        _ = try? model.quantizedMatrix(named: name)
        guard let tensor = try? model.tensor(named: name) else { continue }
        _ = try? tensor.floats()
    }
    return 0
}

func fixHeaderChecksum(_ bytes: inout [UInt8]) {
    let preamble = NativeFormat.preambleSize
    guard bytes.count >= preamble else { return }
    let length = bytes.withUnsafeBytes { $0.loadInteger(UInt64.self, at: 16) } ?? 0
    guard length >= 1, length <= UInt64(bytes.count - preamble) else { return }
    let checksum = bytes.withUnsafeBytes { XXHash64.hash(UnsafeRawBufferPointer(rebasing: $0[preamble..<preamble + Int(length)])) }
    withUnsafeBytes(of: checksum.littleEndian) { value in
        for index in 0..<8 { bytes[24 + index] = value[index] }
    }
}
