import ArgumentParser
import FoundationEssentials
import OutpostCore
import GGUF

struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Inspect model files.",
        subcommands: [Info.self]
    )

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Architecture, sizes, tensor types and the kernel path of a GGUF model file."
        )

        @Option(name: .long, help: "GGUF model file (default: $OUTPOST_MODEL or the fetched default model).")
        var model: String?

        @Flag(name: .long, help: "Print JSON on stdout.")
        var json = false

        func run() async throws {
            let path = try DefaultPaths.modelPath(model)
            let file: GGUFFile
            do {
                file = try GGUFFile(path: path)
            } catch let error as GGUFError {
                throw CLIError(error.description)
            }
            let summary = ModelSummary(file)
            let kernel = KernelInfo.name
            if json {
                guard case .object(var object) = try JSONValue.parse(JSONEncoder().encode(summary)) else {
                    throw CLIError("internal: the model summary is not a JSON object")
                }
                object["kernel"] = .string(kernel)
                try JSONOutput.print(object: JSONValue.object(object))
            } else {
                print(Self.render(summary, kernel: kernel, path: path))
            }
        }

        static func render(_ s: ModelSummary, kernel: String, path: String) -> String {
            func opt(_ v: Int?) -> String { v.map(String.init) ?? "-" }
            let mib = Double(s.fileBytes) / 1_048_576
            let params = s.parameters >= 1_000_000_000
                ? String(printf: "%.2fB", Double(s.parameters) / 1e9)
                : String(printf: "%.1fM", Double(s.parameters) / 1e6)
            let types = s.tensorTypes.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                .map { "\($0.key)×\($0.value)" }.joined(separator: ", ")
            return """
            file:          \(path) (\(String(printf: "%.1f", mib)) MiB, GGUF v\(s.ggufVersion))
            model:         \(s.name ?? "-") (\(s.architecture))
            parameters:    \(params) (\(s.parameters))
            quantization:  \(s.quantization)
            context:       \(opt(s.contextLength)) tokens
            embedding:     \(opt(s.embeddingLength)), layers \(opt(s.layers)), heads \(opt(s.heads)) (kv \(opt(s.kvHeads)))
            vocabulary:    \(opt(s.vocabSize))
            tensors:       \(s.tensorCount): \(types)
            kernel:        \(kernel)
            """
        }
    }
}
