import ArgumentParser
import BEATsCore

struct TensorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tensor", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats tensor' is not implemented yet")
    }
}
