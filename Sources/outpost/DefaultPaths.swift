import FoundationEssentials
import OutpostCore

/// Where Outpost looks for things when it is not told.
enum DefaultPaths {
    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// `$OUTPOST_MODEL_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/outpost/models` (as scripts/fetch-model.sh).
    static var modelCacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["OUTPOST_MODEL_CACHE"], !dir.isEmpty { return dir }
        let cache = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Paths.join(homeDirectory(), ".cache")
        return Paths.join(cache, "outpost/models")
    }

    /// The model to use: the flag, else `$OUTPOST_MODEL`, else the fetched default model.
    static func modelPath(_ flag: String?) throws -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = ProcessInfo.processInfo.environment["OUTPOST_MODEL"], !env.isEmpty { return env }
        let path = Paths.join(modelCacheDirectory, defaultModelFile)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("no --model given and the default model is not at \(path); run scripts/fetch-model.sh or pass --model PATH")
        }
        return path
    }
}
