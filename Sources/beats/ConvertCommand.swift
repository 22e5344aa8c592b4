import ArgumentParser
import BEATsCore

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats convert' is not implemented yet")
    }
}
