import BEATsCheckpoint
import BEATsCore

/// The safetensors reader as every model command uses it: open (length, JSON header, every
/// entry, the regions' tiling, the config from `__metadata__`), then what `inspect` and the
/// runtime read: kind, config, labels, every tensor's values. Also the JSON reader alone on the
/// input, as `config.json` beside a file is read. No config.json is looked up beside the input
/// (the lookup path does not exist), so only the bytes decide.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    _ = try? JSONReader.parse(bytes)
    let file = MappedFile(path: "fuzz.safetensors", copying: UnsafeBufferPointer(start: data, count: size))
    guard let model = try? SafetensorsFile.open(file: file, configPath: "/nonexistent/config.json") else { return 0 }
    _ = model.kind
    _ = model.config.values
    _ = model.labels.count
    _ = model.configAbsence
    _ = try? model.verifyChecksums()
    var totalElements = 0
    for name in model.tensorNames {
        guard let tensor = try? model.tensor(named: name) else { continue }
        totalElements += tensor.elementCount
        _ = try? tensor.floats()
    }
    withExtendedLifetime(totalElements) {}
    return 0
}
