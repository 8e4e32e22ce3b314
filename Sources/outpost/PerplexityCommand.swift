import ArgumentParser
import Inference

struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text read as one sequence (BOS where the vocabulary asks for it, special tokens not parsed).")

    @Option(help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).") var model: String?
    @Option(name: .customLong("text-file"), help: "File holding the text.") var textFile: String
    @Option(help: "Context length (default: the text's length, up to the model's); a longer text is scored in windows of this size.") var ctx: Int?
    @Option(help: "Threads (default: the online CPUs).") var threads: Int?
    @Flag(help: "Print JSON on stdout (the only output format).") var json = false

    func run() async throws {
        let text = try CommandInput.text(inline: nil, file: textFile, name: "text")
        let engine = try CommandInput.engine(model, threads: threads)
        let ids = engine.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let window = try CommandInput.positive(ctx, "ctx") ?? min(ids.count, engine.model.config.contextLength)
        let result = try CLIError.catching {
            try Perplexity.compute(model: engine.model, tokens: ids, window: window, threads: engine.threads)
        }
        try JSONOutput.print(object: ["tokens": result.tokens, "perplexity": result.perplexity])
    }
}
