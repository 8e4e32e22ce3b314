import Foundation
import GGUF
@testable import Inference

/// Where the engine tests find the real model and the golden llama.cpp outputs.
enum TestSupport {
    struct MissingModel: Error, CustomStringConvertible {
        let path: String
        var fetch = "run scripts/fetch-model.sh or set OUTPOST_MODEL"
        var description: String { "model not found at \(path); \(fetch)" }
    }

    static var modelPath: String {
        let env = ProcessInfo.processInfo.environment
        if let p = env["OUTPOST_MODEL"], !p.isEmpty { return p }
        let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return (cache as NSString).appendingPathComponent("outpost/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    /// The GGUF file, opened once for all tests.
    static let file: Result<GGUFFile, Error> = {
        let path = modelPath
        guard FileManager.default.fileExists(atPath: path) else { return .failure(MissingModel(path: path)) }
        return Result { try GGUFFile(path: path) }
    }()

    static let tokenizer: Result<Tokenizer, Error> = file.flatMap { f in Result { try Tokenizer(gguf: f) } }

    /// Gemma 3 270M (Q4_K_M), the SentencePiece vocabulary's reference model: where
    /// scripts/fetch-gemma.sh puts it, or `OUTPOST_GEMMA_MODEL`.
    static var gemmaPath: String {
        let env = ProcessInfo.processInfo.environment
        if let p = env["OUTPOST_GEMMA_MODEL"], !p.isEmpty { return p }
        let folder = env["OUTPOST_MODEL_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")) as NSString)
                .appendingPathComponent("outpost/models")
        return (folder as NSString).appendingPathComponent("gemma-3-270m-q4_k_m.gguf")
    }

    /// The Gemma file, opened once for all tests.
    static let gemmaFile: Result<GGUFFile, Error> = {
        let path = gemmaPath
        guard FileManager.default.fileExists(atPath: path) else {
            return .failure(MissingModel(path: path, fetch: "run scripts/fetch-gemma.sh or set OUTPOST_GEMMA_MODEL"))
        }
        return Result { try GGUFFile(path: path) }
    }()

    static let gemmaTokenizer: Result<Tokenizer, Error> = gemmaFile.flatMap { f in Result { try Tokenizer(gguf: f) } }

    /// A golden file copied into Fixtures/ beside this source file.
    static func fixture(_ name: String) throws -> Any {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url))
    }
}
