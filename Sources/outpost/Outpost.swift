import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

@main
struct Outpost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost",
        abstract: "A local LLM agent for edge gateways.",
        subcommands: [Run.self, Ask.self, Model.self, Tokenize.self, Detokenize.self, Generate.self, Logits.self,
                      PerplexityCommand.self, Bench.self, Cache.self, Config.self, Member.self]
    )

    /// Errors the commands raise are printed as one line on stderr with exit status 1; argument
    /// errors keep ArgumentParser's usage message.
    static func main() async {
        // An OUTPOST_KERNEL this CPU or build cannot run is refused before any command runs.
        if let error = KernelInfo.initError {
            StandardStreams.err("outpost: error: \(error)\n")
            Glibc.exit(1)
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            StandardStreams.err("outpost: error: \(error.description)\n")
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
