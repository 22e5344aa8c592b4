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
}
