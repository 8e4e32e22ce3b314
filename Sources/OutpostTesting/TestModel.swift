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
        let cache = env["OUTPOST_MODEL_CACHE"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                 ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")) as NSString)
                .appendingPathComponent("outpost/models")
        return (cache as NSString).appendingPathComponent(fileName)
    }

    /// The model's path; throws `Missing` when it is not there.
    public static func path() throws -> String {
        let p = expectedPath
        guard FileManager.default.fileExists(atPath: p) else { throw Missing(path: p) }
        return p
    }
}
