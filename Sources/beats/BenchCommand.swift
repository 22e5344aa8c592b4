import ArgumentParser
import BEATsCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats bench' is not implemented yet")
    }
}
