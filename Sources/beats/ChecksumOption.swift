import ArgumentParser

/// `--verify-checksums`, for every command that takes a model.
struct ChecksumOption: ParsableArguments {
    @Flag(help: ArgumentHelp("Verify every checksum the model file carries before using it.",
                             discussion: """
                                 Native files: XXH64 of every tensor; PyTorch zip checkpoints: CRC-32 of every record; \
                                 safetensors and legacy checkpoints carry none (bounds only). Reads the whole file once \
                                 (about 0.2 s for a full-size float32 model in the page cache); without it a flipped tensor byte \
                                 goes unnoticed (only 'beats check' sees it).
                                 """))
    var verifyChecksums = false
}
