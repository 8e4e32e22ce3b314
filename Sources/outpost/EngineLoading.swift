import FoundationEssentials
import OutpostCore
import GGUF
import Inference

/// Loading models and inputs for the engine commands, with errors as one-line CLI errors.
enum EngineLoading {
    static func openFile(_ flag: String?) throws -> GGUFFile {
        let path = try DefaultPaths.modelPath(flag)
        do {
            return try GGUFFile(path: path)
        } catch let error as GGUFError {
            throw CLIError(error.description)
        }
    }

    static func tokenizer(_ flag: String?) throws -> Tokenizer {
        let file = try openFile(flag)
        return try engine { try Tokenizer(gguf: file) }
    }

    static func model(_ flag: String?) throws -> LanguageModel {
        let file = try openFile(flag)
        return try engine { try LanguageModel(file: file) }
    }

    /// Runs engine code, turning `InferenceError` into a CLI error.
    static func engine<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as InferenceError {
            throw CLIError(error.description)
        }
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
