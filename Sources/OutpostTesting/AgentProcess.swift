#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A real `outpost run` on a temp state directory and socket, for integration tests, and `curl`
/// (a real HTTP client) to talk to it over the Unix socket.
public final class AgentProcess: @unchecked Sendable {
    // @unchecked: `child` is guarded by `lock`.
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let stateDirectory: String
    public let arguments: [String]
    public var logPath: String { directory.file("agent.log").path }
    private let lock = NSLock()
    private var child: ChildProcess?

    public struct AgentError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts an agent and waits until `/health` says ready. `extraArguments` go after `run`;
    /// `model` is the default model's path unless given.
    public init(model: String? = nil, extraArguments: [String] = [], configJSON: String? = nil,
                directory: TemporaryDirectory? = nil, waitReady: Bool = true) throws {
        let dir = try directory ?? TemporaryDirectory(prefix: "outpost-agent")
        self.directory = dir
        // Unix socket paths are short (107 bytes): keep the socket in a short temp path.
        socketPath = "/tmp/op-\(UUID().uuidString.prefix(8)).sock"
        stateDirectory = dir.file("state").path
        var args = ["run", "--model", try model ?? TestModel.path(), "--state-dir", stateDirectory, "--socket", socketPath,
                    "--threads", "2", "--ctx", "1024"]
        if let configJSON {
            let path = dir.file("outpost.json").path
            try configJSON.write(toFile: path, atomically: true, encoding: .utf8)
            args += ["--config", path]
        }
        arguments = args + extraArguments
        try start(waitReady: waitReady)
    }

    public func start(waitReady: Bool = true) throws {
        let c = try ChildProcess(executable: try OutpostBinary.path(), arguments: arguments,
                                 environment: ["OUTPOST_LOG_LEVEL": "debug"], stdoutPath: logPath)
        lock.withLock { child = c }
        if waitReady { try self.waitReady() }
    }

    public var process: ChildProcess? { lock.withLock { child } }

    public func waitReady(timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let c = process, !c.isRunning {
                throw AgentError(description: "the agent exited at start; log:\n\(log())")
            }
            if let r = try? curl(["/health"]), r.status == 200 { return }
            usleep(50_000)
        }
        throw AgentError(description: "the agent was not ready within \(timeout) s; log:\n\(log())")
    }

    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM and wait; returns the exit code (nil if killed by a signal).
    @discardableResult
    public func stop(timeout: Double = 30) -> Int32? {
        guard let c = lock.withLock({ () -> ChildProcess? in defer { child = nil }; return child }) else { return nil }
        let status = c.terminate(grace: timeout)
        return ChildProcess.exitCode(status)
    }

    /// SIGKILL, as a crash or power loss would.
    public func kill9() {
        guard let c = lock.withLock({ () -> ChildProcess? in defer { child = nil }; return child }) else { return }
        c.signal(SIGKILL)
        _ = c.wait(timeout: 10)
    }

    deinit {
        kill9()
        unlink(socketPath)
        directory.remove()
    }

    public struct HTTPResult: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: String
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    /// `curl --unix-socket` with `extra` arguments (the URL path first).
    public func curl(_ extra: [String], timeout: Double = 300) throws -> HTTPResult {
        try Self.curl(socket: socketPath, extra, timeout: timeout)
    }

    public static func curl(socket: String, _ extra: [String], timeout: Double = 300) throws -> HTTPResult {
        let dir = try TemporaryDirectory(prefix: "outpost-curl")
        defer { dir.remove() }
        let out = dir.file("body").path
        let head = dir.file("head").path
        var args = ["-sS", "--max-time", String(Int(timeout)), "--unix-socket", socket, "-o", out, "-D", head]
        var rest = extra
        let path = rest.removeFirst()
        args += rest
        args.append("http://localhost\(path)")
        let c = try ChildProcess(executable: "/usr/bin/curl", arguments: args, stdoutPath: dir.file("stdout").path,
                                 stderrPath: dir.file("stderr").path)
        guard let status = c.wait(timeout: timeout + 10), ChildProcess.exitCode(status) == 0 else {
            c.signal(SIGKILL)
            let err = (try? String(contentsOfFile: dir.file("stderr").path, encoding: .utf8)) ?? ""
            throw AgentError(description: "curl failed: \(err)")
        }
        let headText = (try? String(contentsOfFile: head, encoding: .utf8)) ?? ""
        var code = 0
        var headers: [String: String] = [:]
        for line in headText.split(separator: "\r\n") {
            if line.hasPrefix("HTTP/") {
                code = Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                headers = [:]
            } else if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let body = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return HTTPResult(status: code, headers: headers, body: body)
    }

    /// POSTs JSON to `path`.
    public func post(_ path: String, json: String) throws -> HTTPResult {
        let file = directory.file("req-\(UUID().uuidString).json").path
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        return try curl([path, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@\(file)"])
    }
}
