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
        let text = try EngineLoading.text(inline: nil, file: textFile, name: "text")
        let model = try EngineLoading.model(self.model)
        let ids = model.tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let window = try EngineLoading.positive(ctx, "ctx") ?? min(ids.count, model.config.contextLength)
        let result = try EngineLoading.engine {
            try Perplexity.compute(model: model, tokens: ids, window: window,
                                   threads: try EngineLoading.positive(threads, "threads"))
        }
        try JSONOutput.print(object: ["tokens": result.tokens, "perplexity": result.perplexity])
    }
}
