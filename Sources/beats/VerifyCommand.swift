import ArgumentParser
import BEATsCore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "(not yet implemented)")

    func run() throws {
        throw CommandError("'beats verify' is not implemented yet")
    }
}
