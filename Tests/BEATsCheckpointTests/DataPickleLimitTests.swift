import BEATsCheckpoint
import BEATsCore
import Testing

/// The cap on `data.pkl` (Formats/SECURITY.md): the hidden zip bomb's shape, a small file whose
/// pickle honestly inflates to gigabytes, is refused from its declared size before a byte is
/// inflated. tools/fixtures/make_pickle_bomb.py makes the full 2 GiB case for measuring.
@Suite("data.pkl size limit")
struct DataPickleLimitTests {
    /// An empty dict pickled (protocol 2), padded with zeros after the STOP opcode so the
    /// entry has `size` bytes; deflated or stored.
    private func checkpoint(size: Int, deflate: Bool) -> [UInt8] {
        let pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x2E]  // PROTO 2, EMPTY_DICT, STOP
        var builder = ZipTestBuilder()
        builder.add(.init(name: "archive/data.pkl", contents: pickle + [UInt8](repeating: 0, count: size - pickle.count), deflate: deflate))
        return builder.bytes()
    }

    private func open(_ bytes: [UInt8], limit: Int) throws -> PyTorchCheckpoint {
        try PyTorchCheckpoint.open(file: MappedFile(path: "bomb.pt", copying: bytes), limits: .init(maximumPickleBytes: limit))
    }

    @Test("the default is the documented 32 MiB")
    func defaults() {
        #expect(PyTorchCheckpoint.Limits().maximumPickleBytes == 32 << 20)
    }

    @Test("a pickle of exactly the limit is read, one byte over is refused before inflating", arguments: [false, true])
    func limit(deflate: Bool) throws {
        let bytes = checkpoint(size: 4096, deflate: deflate)
        #expect(try open(bytes, limit: 4096).tensorNames.isEmpty)
        #expect(throws: CheckpointError.pickleTooLarge(entry: "archive/data.pkl", declared: 4096, limit: 4095)) {
            try open(bytes, limit: 4095)
        }
    }

    @Test("hasBEATsConfig: a cfg dict counts, no cfg does not")
    func configPresence() throws {
        func checkpoint(cfg: ((inout PickleBuilder) -> Void)?) throws -> PyTorchCheckpoint {
            var pickle = PickleBuilder()
            pickle.op(.proto); pickle.u8(2)
            pickle.op(.emptyDict)
            if let cfg {
                pickle.shortString("cfg")
                cfg(&pickle)
                pickle.op(.setItem)
            }
            var builder = ZipTestBuilder()
            builder.add(.init(name: "archive/data.pkl", contents: pickle.finished()))
            return try PyTorchCheckpoint.open(file: MappedFile(path: "cfg.pt", copying: builder.bytes()))
        }
        #expect(try checkpoint(cfg: nil).hasBEATsConfig == false)
        #expect(throws: PickleError.self) { try checkpoint(cfg: { $0.op(.none) }) }  // a cfg that is not a dict is an error
        let withConfig = try checkpoint(cfg: { pickle in
            pickle.op(.emptyDict)
            pickle.shortString("encoder_layers")
            pickle.int(3)
            pickle.op(.setItem)
        })
        #expect(withConfig.hasBEATsConfig && withConfig.config.encoderLayers == 3)
    }
}
