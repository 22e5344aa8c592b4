import ArgumentParser
import BEATsCore

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenize", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats tokenize' is not implemented yet")
    }
}
