import ArgumentParser
import CQuants
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
            let support = Self.typeSupport(file)
            if json {
                guard case .object(var object) = try JSONValue.parse(JSONEncoder().encode(summary)) else {
                    throw CLIError("internal: the model summary is not a JSON object")
                }
                object["kernel"] = .string(kernel)
                object["tensor_type_support"] = .object(Dictionary(uniqueKeysWithValues: support.map { t in
                    (t.name, JSONValue.object([
                        "count": .number(Double(t.count)),
                        "runs": .bool(t.runs),
                        "kernel": t.runs ? .string(kernel) : .null,
                        "activation_type": t.activation.map(JSONValue.string) ?? .null,
                        "repacked": .bool(t.repacked),
                    ]))
                }))
                try JSONOutput.print(object: JSONValue.object(object))
            } else {
                print(Self.render(summary, kernel: kernel, path: path, support: support))
            }
        }

        /// One tensor type of a file: how many tensors, whether this build and CPU run it (and with
        /// which activation type), and whether the kernel path repacks it at load.
        struct TypeSupport {
            let name: String
            let count: Int
            let runs: Bool
            let activation: String?
            let repacked: Bool
        }

        static func typeSupport(_ file: GGUFFile) -> [TypeSupport] {
            var counts: [GGMLType: Int] = [:]
            for t in file.tensors { counts[t.type, default: 0] += 1 }
            return counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key.rawValue < $1.key.rawValue) }
                .map { type, count in
                    let id = Int32(type.rawValue)
                    let runs = cq_type_supported(id) != 0
                    let activation = runs ? cq_get_type_traits(cq_vec_dot_type(id)).map { String(cString: $0.pointee.name) } : nil
                    return TypeSupport(name: type.name, count: count, runs: runs, activation: activation,
                                       repacked: runs && cq_repack_preferred(id) != 0)
                }
        }

        static func render(_ s: ModelSummary, kernel: String, path: String, support: [TypeSupport]) -> String {
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
            """ + support.map { t in
                let how = t.runs ? "runs on \(kernel), activations \(t.activation ?? "-")\(t.repacked ? ", repacked at load" : "")"
                    : "NOT SUPPORTED by this build"
                return "\n  \(t.name + String(repeating: " ", count: max(0, 6 - t.name.count))) ×\(t.count): \(how)"
            }.joined()
        }
    }
}
