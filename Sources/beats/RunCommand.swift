import ArgumentParser
import BEATsCore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats run' is not implemented yet")
    }
}
