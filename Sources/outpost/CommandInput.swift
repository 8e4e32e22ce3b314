import FoundationEssentials
import Inference

/// What the engine commands take from their arguments: texts, token ids, positive counts, and the
/// engine itself, with mistakes reported as one-line CLI errors.
enum CommandInput {
    /// The engine for the model the `--model` flag names (see `DefaultPaths.modelPath`).
    static func engine(_ modelFlag: String?, threads: Int?, chatTemplate: String? = nil) throws -> Engine {
        let path = try DefaultPaths.modelPath(modelFlag)
        let threads = try positive(threads, "threads")
        return try CLIError.catching { try Engine(path: path, threads: threads, chatTemplate: chatTemplate) }
    }

    /// Only the tokenizer of the model the `--model` flag names.
    static func tokenizer(_ modelFlag: String?) throws -> Tokenizer {
        let path = try DefaultPaths.modelPath(modelFlag)
        return try CLIError.catching { try Engine.loadTokenizer(path: path) }
    }

    /// Exactly one of an inline text and a file holding it.
    static func text(inline: String?, file: String?, name: String) throws -> String {
        switch (inline, file) {
        case (let t?, nil): return t
        case (nil, let f?):
            guard let data = FileManager.default.contents(atPath: f) else { throw CLIError("cannot read \(name) file \(f)") }
            return String(decoding: data, as: UTF8.self)
        default:
            throw CLIError("give exactly one of --\(name) and --\(name)-file")
        }
    }

    /// Comma-separated token ids (whitespace allowed).
    static func ids(_ text: String, source: String) throws -> [Int32] {
        let parts = text.split(whereSeparator: { $0 == "," || $0.isWhitespace || $0 == "[" || $0 == "]" })
        return try parts.map { part in
            guard let v = Int32(part) else { throw CLIError("\(source): '\(part)' is not a token id") }
            return v
        }
    }

    static func positive(_ value: Int?, _ name: String) throws -> Int? {
        if let value, value <= 0 { throw CLIError("--\(name) must be positive, is \(value)") }
        return value
    }
}
