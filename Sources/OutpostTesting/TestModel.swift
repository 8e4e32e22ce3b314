import Foundation

/// The real default model for tests: `$OUTPOST_MODEL`, else the fetch script's cache path.
/// Tests that need it fail (not skip) when it is missing: CI fetches it first.
public enum TestModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "the default model is not at \(path); run scripts/fetch-model.sh (or set OUTPOST_MODEL)" }
    }

    public static var expectedPath: String {
        let env = ProcessInfo.processInfo.environment
        if let p = env["OUTPOST_MODEL"], !p.isEmpty { return p }
        return (cacheFolder as NSString).appendingPathComponent(fileName)
    }

    /// The model cache folder (scripts/fetch-model.sh, fetch-gemma.sh, make-test-models.sh).
    public static var cacheFolder: String {
        let env = ProcessInfo.processInfo.environment
        return env["OUTPOST_MODEL_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                 ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")) as NSString)
                .appendingPathComponent("outpost/models")
    }

    /// Gemma 3 270M Q4_K_M (scripts/fetch-gemma.sh, or `OUTPOST_GEMMA_MODEL`); throws `Missing`
    /// when it is not there.
    public static func gemmaPath() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let p = env["OUTPOST_GEMMA_MODEL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (cacheFolder as NSString).appendingPathComponent("gemma-3-270m-q4_k_m.gguf")
        guard FileManager.default.fileExists(atPath: p) else { throw Missing(path: p) }
        return p
    }

    /// The model's path; throws `Missing` when it is not there.
    public static func path() throws -> String {
        let p = expectedPath
        guard FileManager.default.fileExists(atPath: p) else { throw Missing(path: p) }
        return p
    }
}
