import ArgumentParser
import BEATsCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats inspect' is not implemented yet")
    }
}
