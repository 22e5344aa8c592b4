import ArgumentParser
import BEATsCore

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats check' is not implemented yet")
    }
}
