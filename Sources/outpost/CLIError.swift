import ArgumentParser
import GGUF
import Inference

/// A failure the CLI reports as one line on stderr with exit status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }

    /// Runs engine code, turning the model file's and the engine's errors into CLI errors.
    static func catching<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as GGUFError {
            throw CLIError(error.description)
        } catch let error as InferenceError {
            throw CLIError(error.description)
        }
    }
}
