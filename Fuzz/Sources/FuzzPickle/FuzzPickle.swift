import BEATsCheckpoint
import BEATsCore

/// The pickle machine and every walk the checkpoint reader and the CLI make over its result.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let object = try? PickleMachine.load(bytes, fileOffset: 0, context: "fuzz.pkl") else { return 0 }
    let root = object.root
    _ = object.summary(of: root, maxLength: 200)
    _ = object.reachableNodeCount(from: root)
    _ = object.typeName(of: root)
    _ = try? object.tensorEntries(in: root)
    _ = try? object.configScalars(in: root)
    _ = try? object.integerKeyedStrings(in: root)
    // The checkpoint's view: cfg, model and label_dict under the root, when present.
    for key in ["cfg", "model", "label_dict", "state_dict"] {
        guard let value = object.value(forKey: key, in: root) else { continue }
        _ = object.summary(of: value, maxLength: 80)
        _ = try? object.tensorEntries(in: value)
        _ = try? object.configScalars(in: value)
        _ = try? object.integerKeyedStrings(in: value)
    }
    // Every node's accessors (bounded: the arena holds at most a few values per input byte).
    for id in object.nodeIDs.prefix(4096) {
        _ = object.kind(of: id)
        _ = object.offset(of: id)
        _ = object.scalar(of: id)
        _ = object.integers(of: id)
        _ = object.bigInteger(of: id)
        _ = object.tensor(of: id)
        _ = object.storage(of: id)
        _ = object.summary(of: id, maxLength: 40)
    }
    return 0
}
