import ArgumentParser
import Inference

struct Detokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The text of token ids (special tokens written out).")

    @Option(help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).") var model: String?
    @Option(help: "Comma-separated token ids.") var ids: String
    @Flag(help: "Print JSON on stdout (the only output format).") var json = false

    func run() async throws {
        let tokens = try CommandInput.ids(ids, source: "--ids")
        let tokenizer = try CommandInput.tokenizer(model)
        let text = try CLIError.catching { try tokenizer.decodeText(tokens) }
        try JSONOutput.print(object: ["text": text])
    }
}
