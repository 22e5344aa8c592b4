import ArgumentParser
import BEATsCore

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "classify", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats classify' is not implemented yet")
    }
}
