import Foundation

/// The built `outpost` executable, for tests that run the CLI as a user would:
/// `$OUTPOST_BINARY`, else beside the test bundle in the build products folder.
public enum OutpostBinary {
    public struct NotFound: Error, CustomStringConvertible {
        public let searched: [String]
        public var description: String { "outpost binary not found; looked in \(searched.joined(separator: ", "))" }
    }

    public static func path() throws -> String {
        if let p = ProcessInfo.processInfo.environment["OUTPOST_BINARY"], !p.isEmpty { return p }
        var candidates: [String] = []
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(exe.deletingLastPathComponent().appendingPathComponent("outpost").path)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("outpost").path)
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
        throw NotFound(searched: candidates)
    }

    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs `outpost` with `arguments` to completion (killed after `timeout` seconds).
    public static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 120) throws -> Result {
        let dir = try TemporaryDirectory(prefix: "outpost-cli")
        defer { dir.remove() }
        let out = dir.file("stdout").path
        let err = dir.file("stderr").path
        let child = try ChildProcess(executable: try path(), arguments: arguments, environment: environment,
                                     stdoutPath: out, stderrPath: err)
        let raw: Int32
        if let s = child.wait(timeout: timeout) {
            raw = s
        } else {
            child.signal(SIGKILL)
            raw = child.wait(timeout: 10) ?? -1
        }
        let status = ChildProcess.exitCode(raw) ?? (128 + (ChildProcess.termSignal(raw) ?? 0))
        return Result(status: status,
                      stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }
}
