import ArgumentParser
import Inference

struct Tokenize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Token ids of a text, as the model's tokenizer splits it.")

    @Option(help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).") var model: String?
    @Option(help: "Text to tokenize.") var text: String?
    @Option(name: .customLong("text-file"), help: "File holding the text to tokenize.") var textFile: String?
    @Flag(help: "Map special-token text such as <|im_end|> to its id.") var special = false
    @Flag(help: "Print JSON on stdout (the only output format).") var json = false

    func run() async throws {
        let input = try CommandInput.text(inline: text, file: textFile, name: "text")
        let tokenizer = try CommandInput.tokenizer(model)
        let ids = tokenizer.encode(input, addSpecial: true, parseSpecial: special)
        try JSONOutput.print(object: ["ids": ids.map(Int.init)])
    }
}
