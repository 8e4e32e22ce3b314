import ArgumentParser

@main
struct Outpost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outpost",
        abstract: "A local LLM agent for edge gateways.",
        subcommands: [Cache.self]
    )
}
