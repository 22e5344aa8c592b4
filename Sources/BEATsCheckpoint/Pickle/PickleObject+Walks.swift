import BEATsCore

/// A tensor found by ``PickleObject/tensorEntries(in:)``: its dotted name and record.
public struct PickleTensorEntry: Sendable, Hashable {
    /// Keys from the starting dict down, joined with "." (`encoder.layers.0.fc1.weight`).
    public let name: String
    public let tensor: TorchTensorRecord
    /// The tensor's node (tensors shared under two names have the same node).
    public let node: PickleNodeID
}

extension PickleObject {
    /// Every tensor in `dict` and in dicts nested inside it, in insertion order, named by their
    /// keys joined with ".". Other values (ints, lists, None) are skipped.
    ///
    /// Iterative and linear: each dict is entered once even if the memo shares it under several
    /// keys (its tensors are named by the first path), which keeps a memo bomb or a cycle cheap.
    /// A tensor shared by two keys is listed under both names.
    ///
    /// - Throws: ``PickleError/unexpectedData(_:at:)`` if `dict` is not a dict, a key on the way
    ///   to a tensor is not a str or int, or a name repeats; ``PickleError/limitExceeded(limit:value:at:)``
    ///   past ``PickleLimits/maxNestingDepth``, ``PickleLimits/maxNameLength`` or ``PickleLimits/maxTotalNameBytes``.
    public func tensorEntries(in dict: PickleNodeID) throws(PickleError) -> [PickleTensorEntry] {
        guard case .dict(let rootIndex) = node(dict) else {
            throw .unexpectedData("expected a dict of tensors, found \(typeName(of: dict))", at: location(of: dict))
        }
        struct Frame {
            let entries: [PickleDictEntry]
            var position: Int
            let prefix: String
        }
        var frames = [Frame(entries: dicts[rootIndex].entries, position: 0, prefix: "")]
        var entered: Set<Int> = [rootIndex]
        var names: Set<String> = []
        var totalNameBytes = 0
        var result: [PickleTensorEntry] = []

        while let last = frames.indices.last {
            let position = frames[last].position
            guard position < frames[last].entries.count else {
                frames.removeLast()
                continue
            }
            frames[last].position += 1
            let entry = frames[last].entries[position]
            let nestedIndex: Int?
            switch node(entry.value) {
            case .tensor: nestedIndex = nil
            case .dict(let index):
                guard entered.insert(index).inserted else { continue }
                nestedIndex = index
            default: continue
            }

            let key: String
            switch node(entry.key) {
            case .string(let text): key = text
            case .int(let number): key = String(number)
            default:
                throw .unexpectedData("a key on the way to a tensor is a \(typeName(of: entry.key)), not a str", at: location(of: entry.key))
            }
            // Checked before joining: a memoized key may be megabytes long.
            let nameLength = frames[last].prefix.utf8.count + key.utf8.count
            guard nameLength <= limits.maxNameLength else {
                throw .limitExceeded(limit: "tensor name length", value: limits.maxNameLength, at: location(of: entry.key))
            }
            let name = frames[last].prefix + key
            totalNameBytes += nameLength
            guard totalNameBytes <= limits.maxTotalNameBytes else {
                throw .limitExceeded(limit: "total tensor name bytes", value: limits.maxTotalNameBytes, at: location(of: entry.key))
            }

            if let nestedIndex {
                guard frames.count < limits.maxNestingDepth else {
                    throw .limitExceeded(limit: "dict nesting depth", value: limits.maxNestingDepth, at: location(of: entry.value))
                }
                frames.append(Frame(entries: dicts[nestedIndex].entries, position: 0, prefix: name + "."))
            } else if case .tensor(let index) = node(entry.value) {
                guard names.insert(name).inserted else {
                    throw .unexpectedData("tensor name '\(displayable(name))' appears twice", at: location(of: entry.key))
                }
                result.append(PickleTensorEntry(name: name, tensor: tensors[index], node: entry.value))
            }
        }
        return result
    }

    /// The str-keyed scalars of a dict such as a checkpoint's `cfg`: ints that fit, floats,
    /// bools and strs. Values of other types (None, lists, …) are left out; a repeated key keeps
    /// its last value.
    ///
    /// - Throws: ``PickleError/unexpectedData(_:at:)`` if `dict` is not a dict or has a key that
    ///   is not a str; ``PickleError/limitExceeded(limit:value:at:)`` when the keys add up to more
    ///   than ``PickleLimits/maxTotalNameBytes`` (each is hashed, and the memo can repeat a long one).
    public func configScalars(in dict: PickleNodeID) throws(PickleError) -> [String: ConfigScalar] {
        guard let entries = dictEntries(of: dict) else {
            throw .unexpectedData("expected a config dict, found \(typeName(of: dict))", at: location(of: dict))
        }
        var values: [String: ConfigScalar] = [:]
        var keyBytes = 0
        for entry in entries {
            guard let key = string(of: entry.key) else {
                throw .unexpectedData("config key is a \(typeName(of: entry.key)), not a str", at: location(of: entry.key))
            }
            keyBytes += key.utf8.count
            guard keyBytes <= limits.maxTotalNameBytes else {
                throw .limitExceeded(limit: "total config key bytes", value: limits.maxTotalNameBytes, at: location(of: entry.key))
            }
            if let value = scalar(of: entry.value) { values[key] = value }
        }
        return values
    }

    /// An `{int: str}` dict such as a fine-tuned checkpoint's `label_dict` (index → AudioSet MID).
    ///
    /// - Throws: ``PickleError/unexpectedData(_:at:)`` naming the first key or value of another type.
    public func integerKeyedStrings(in dict: PickleNodeID) throws(PickleError) -> [Int: String] {
        guard let entries = dictEntries(of: dict) else {
            throw .unexpectedData("expected an {int: str} dict, found \(typeName(of: dict))", at: location(of: dict))
        }
        var values: [Int: String] = [:]
        for entry in entries {
            guard let key = integer(of: entry.key) else {
                throw .unexpectedData("key is a \(typeName(of: entry.key)), not an int", at: location(of: entry.key))
            }
            guard let value = string(of: entry.value) else {
                throw .unexpectedData("value of key \(key) is a \(typeName(of: entry.value)), not a str", at: location(of: entry.value))
            }
            values[key] = value
        }
        return values
    }

    /// Nodes reachable from `start` (itself included), each counted once: the real size of a
    /// structure whose Python repr could be exponentially large.
    public func reachableNodeCount(from start: PickleNodeID) -> Int {
        var visited = [Bool](repeating: false, count: nodes.count)
        var pending = [start]
        visited[start.index] = true
        var count = 0
        while let id = pending.popLast() {
            count += 1
            func visit(_ child: PickleNodeID) {
                if !visited[child.index] {
                    visited[child.index] = true
                    pending.append(child)
                }
            }
            switch node(id) {
            case .tuple(let items), .frozenSet(let items): items.forEach(visit)
            case .list(let index): lists[index].forEach(visit)
            case .set(let index): sets[index].forEach(visit)
            case .dict(let index):
                for entry in dicts[index].entries {
                    visit(entry.key)
                    visit(entry.value)
                }
            default: break
            }
        }
        return count
    }

    /// A Python-like rendering of a value, cut at `maxLength` characters (with "…"). Work is
    /// bounded by `maxLength`, not by the value's size, so it is safe on cycles and bombs.
    public func summary(of id: PickleNodeID, maxLength: Int = 200) -> String {
        enum Step {
            case value(PickleNodeID)
            case text(String)
            case items([PickleNodeID], position: Int, close: String)
            case entries([PickleDictEntry], position: Int, close: String)
        }
        var output = ""
        var outputLength = 0
        var steps: [Step] = [.value(id)]
        func emit(_ text: String) {
            output += text
            outputLength += text.count
        }
        while outputLength <= maxLength, let step = steps.popLast() {
            switch step {
            case .text(let text):
                emit(text)
            case .items(let items, let position, let close):
                guard position < items.count else {
                    emit(close)
                    continue
                }
                if position > 0 { emit(", ") }
                steps.append(.items(items, position: position + 1, close: close))
                steps.append(.value(items[position]))
            case .entries(let entries, let position, let close):
                guard position < entries.count else {
                    emit(close)
                    continue
                }
                if position > 0 { emit(", ") }
                steps.append(.entries(entries, position: position + 1, close: close))
                steps.append(.value(entries[position].value))
                steps.append(.text(": "))
                steps.append(.value(entries[position].key))
            case .value(let current):
                switch node(current) {
                case .none: emit("None")
                case .bool(let value): emit(value ? "True" : "False")
                case .int(let value): emit(String(value))
                case .bigInt(let value): emit(value.littleEndianBytes.count <= 64 ? value.description : "<\(value.littleEndianBytes.count)-byte int>")
                case .float(let value): emit(String(value))
                case .string(let value): emit("'\(displayable(value, maxLength: max(maxLength - outputLength, 1)))'")
                case .bytes(let value): emit("<\(value.count) bytes>")
                case .tuple(let items):
                    if items.count == 1 {
                        emit("(")
                        steps.append(.text(",)"))
                        steps.append(.value(items[0]))
                    } else {
                        emit("(")
                        steps.append(.items(items, position: 0, close: ")"))
                    }
                case .list(let index):
                    emit("[")
                    steps.append(.items(lists[index], position: 0, close: "]"))
                case .set(let index):
                    emit("{")
                    steps.append(.items(sets[index], position: 0, close: "}"))
                case .frozenSet(let items):
                    emit("frozenset({")
                    steps.append(.items(items, position: 0, close: "})"))
                case .dict(let index):
                    emit(dicts[index].isOrdered ? "OrderedDict({" : "{")
                    steps.append(.entries(dicts[index].entries, position: 0, close: dicts[index].isOrdered ? "})" : "}"))
                case .global(let global): emit(global.qualifiedName)
                case .tensor(let index):
                    let record = tensors[index]
                    emit("tensor(\(record.dtype.rawValue), shape \(record.shape), storage '\(displayable(record.storage.key, maxLength: 40))')")
                case .storage(let index):
                    let storage = storages[index]
                    emit("storage('\(displayable(storage.key, maxLength: 40))', \(storage.dtype.rawValue), \(storage.elementCount))")
                }
            }
        }
        guard outputLength > maxLength || !steps.isEmpty else { return output }
        return String(output.prefix(maxLength)) + "…"
    }
}
