import BEATsCore
@testable import BEATsFormat
import BEATsTestSupport
import Foundation
import Testing

/// What the SIGINT/SIGTERM/SIGHUP handler of `beats convert` does, checked without a signal: the
/// handler calls `removeRegisteredFile(slot:)` for every slot, then re-raises. Tests call it only
/// for their own writers' slots, since other suites convert in parallel.
@Suite("Interrupted conversions")
struct InterruptCleanupTests {
    private func makeWriter(in directory: URL, name: String) throws -> NativeModelWriter {
        let entry = NativeTensorEntry(name: "x", dtype: .float32, shape: [2], data: NativeRegion(offset: 0, length: 0, checksum: 0))
        return try NativeModelWriter(destination: directory.appendingPathComponent(name).path,
                                     header: NativeHeader(kind: .pretrained, config: BEATsConfig(), tensors: [entry]))
    }

    private func partialFiles(in directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".partial") }.sorted()
    }

    @Test("an interrupt removes the temporary file of a conversion in progress, and only that")
    func interruptRemovesTemporaryFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let existing = directory.appendingPathComponent("model.beatsw")
        try Data("previous model".utf8).write(to: existing)

        let writer = try makeWriter(in: directory, name: "model.beatsw")
        #expect(try partialFiles(in: directory).count == 1)
        let slot = try #require(writer.interruptSlot)
        InterruptCleanup.removeRegisteredFile(slot: slot)
        #expect(try partialFiles(in: directory).isEmpty)
        // The output under its own name is untouched.
        #expect(try Data(contentsOf: existing) == Data("previous model".utf8))
        writer.abandon()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["model.beatsw"])
    }

    @Test("a committed or abandoned writer is no longer covered, so its slot is reused")
    func slotsAreReleased() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // More writers, one after another, than there are slots: each releases its slot.
        for round in 0..<(InterruptCleanup.slotCount + 4) {
            let writer = try makeWriter(in: directory, name: "m\(round).beatsw")
            #expect(writer.interruptSlot != nil)
            if round.isMultiple(of: 2) {
                let zeros = [UInt8](repeating: 0, count: 8)
                try zeros.withUnsafeBytes { try writer.append($0) }
                try writer.finishRegion()
                try writer.commit()
            } else {
                writer.abandon()
            }
            #expect(writer.interruptSlot == nil)
        }
        let last = try makeWriter(in: directory, name: "last.beatsw")
        InterruptCleanup.removeRegisteredFile(slot: try #require(last.interruptSlot))
        #expect(try partialFiles(in: directory).isEmpty)
        // Committed files were not touched by the cleanup.
        let committed = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".beatsw") }
        #expect(committed.count == (InterruptCleanup.slotCount + 4 + 1) / 2)
        for name in committed { #expect(try NativeModelFile.open(path: directory.appendingPathComponent(name).path).header.tensors.count == 1) }
        last.abandon()
    }
}
