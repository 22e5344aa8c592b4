import BEATsCheckpoint
import BEATsCore
import BEATsTestSupport
import Testing

/// Inputs that once crashed, hung or exhausted memory in the checkpoint reader (found by the
/// libFuzzer targets in Fuzz/ or while writing them), kept in `Fixtures/fuzz-regressions/`. Each
/// must now end in its exact typed error; `Fixtures/fuzz-regressions/README.md` says where each
/// came from.
@Suite("Fuzz regressions: checkpoint reader")
struct CheckpointFuzzRegressionTests {
    /// Opens a regression input and reads every tensor's values, as `beats tensor` and
    /// `beats convert` do; returns what stopped it.
    private func openAndRead(_ name: String) throws -> PyTorchCheckpoint {
        let checkpoint = try PyTorchCheckpoint.open(path: try Fixtures.path("fuzz-regressions/\(name)"))
        for tensorName in checkpoint.tensorNames {
            _ = try checkpoint.tensor(named: tensorName)?.floats()
        }
        return checkpoint
    }

    @Test("a broadcast view (stride 0) of 2^40 elements over a 1-element storage is refused at open, not allocated")
    func broadcastView() throws {
        // torch.save({'w': torch.zeros(1).expand(2**20, 2**20)}): 1.6 KB claiming 4 TiB of values.
        #expect(throws: CheckpointError.viewLargerThanStorage(tensor: "w", elementCount: 1 << 40, storageElements: 1)) {
            try openAndRead("checkpoint-broadcast-view.pt")
        }
    }

    @Test("a deflated record declaring 2^62 bytes is refused at open, before any size from it is trusted")
    func lyingDeclaredSize() throws {
        // Five tensors of 2^59 float32 over one deflated record of 1000 zero bytes whose ZIP64
        // extra field declares 2^62: open accepted it and `inspect` overflowed adding the sizes.
        let path = try Fixtures.path("fuzz-regressions/checkpoint-declared-size.pt")
        let entry = try #require(try ZipArchive(path: path).entry(named: "archive/data/0"))
        #expect(entry.uncompressedSize == 1 << 62)
        let limit = entry.compressedSize * ZipLimits.deflateMaximumRatio + 64
        #expect(throws: ZipError.declaredSizeTooLarge(entry: "archive/data/0", declared: 1 << 62, limit: limit)) {
            try openAndRead("checkpoint-declared-size.pt")
        }
    }

    @Test("views of one deflated record share one inflated buffer: the record is inflated once, not once per view")
    func sharedDeflatedRecord() throws {
        // 1000 one-element views of a deflated record of 4 MiB: 72 KB that made `beats convert`
        // inflate 4 GB (28 s) and hold all of it, one copy per view.
        let checkpoint = try openAndRead("checkpoint-shared-deflated-record.pt")
        #expect(checkpoint.tensorNames.count == 1000)
        let first = try #require(try checkpoint.tensor(named: "t0"))
        let last = try #require(try checkpoint.tensor(named: "t999"))
        #expect(ObjectIdentifier(first.storage.owner) == ObjectIdentifier(last.storage.owner))
        #expect(first.storage.bytes.baseAddress == last.storage.bytes.baseAddress)
        #expect(try last.floats() == [0])
        #expect(last.storageOffset == 999_000)
    }
}
