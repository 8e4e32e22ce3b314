#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A child process for tests, started with `posix_spawn` with an empty signal mask and default
/// signal dispositions (a child started from a Swift concurrency thread would otherwise inherit
/// a blocked SIGTERM and never stop). Its stdout and stderr go to files, or stdout to a pipe read
/// with `readLine()`.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `pid` and `exitStatus` are guarded by `lock`.
    public let executable: String
    public let arguments: [String]
    public let stdoutPath: String
    public let stderrPath: String
    private let lock = NSLock()
    private var pid: pid_t
    private var exitStatus: Int32?
    /// Read end of the stdout pipe, when stdout is piped.
    private let stdoutFD: Int32?
    private var lineBuffer: [UInt8] = []

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `executable` with `arguments`; `environment` entries are added to (and override)
    /// this process's environment.
    public convenience init(executable: String, arguments: [String], environment: [String: String] = [:],
                            stdoutPath: String, stderrPath: String? = nil) throws {
        try self.init(executable: executable, arguments: arguments, environment: environment,
                      stdoutPath: stdoutPath, stderrPath: stderrPath, pipeStdout: false)
    }

    /// Starts `executable` with its stdout on a pipe (read it with `readLine()`); stderr inherited.
    public convenience init(pipingStdoutOf executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        try self.init(executable: executable, arguments: arguments, environment: environment,
                      stdoutPath: "", stderrPath: nil, pipeStdout: true)
    }

    private init(executable: String, arguments: [String], environment: [String: String],
                 stdoutPath: String, stderrPath: String?, pipeStdout: Bool) throws {
        self.executable = executable
        self.arguments = arguments
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath ?? stdoutPath
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var fds: [Int32] = [-1, -1]
        if pipeStdout {
            guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_addclose(&actions, fds[0])
            posix_spawn_file_actions_addclose(&actions, fds[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if let stderrPath, stderrPath != stdoutPath {
                posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            } else {
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            }
        }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, envp)
        if pipeStdout { close(fds[1]) }
        guard rc == 0 else {
            if pipeStdout { close(fds[0]) }
            throw SpawnError(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))")
        }
        pid = child
        stdoutFD = pipeStdout ? fds[0] : nil
    }

    /// The next line of a piped stdout, without the newline; nil at end of file.
    public func readLine() -> String? {
        guard let fd = stdoutFD else { return nil }
        while true {
            if let newline = lineBuffer.firstIndex(of: 10) {
                let line = String(decoding: lineBuffer[..<newline], as: UTF8.self)
                lineBuffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            lineBuffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// SIGKILL, reap, and the signal that ended the child (0 if it had exited by itself).
    @discardableResult
    public func killAndWait() -> Int32 {
        signal(SIGKILL)
        let status = wait(timeout: 30) ?? -1
        return Self.termSignal(status) ?? 0
    }

    public var processID: pid_t { lock.withLock { pid } }

    /// Sends a signal (no effect once the child has been reaped).
    public func signal(_ sig: Int32) {
        lock.withLock {
            if exitStatus == nil { _ = kill(pid, sig) }
        }
    }

    /// Non-blocking: the raw wait status once the child has exited.
    public func poll() -> Int32? {
        lock.withLock {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { exitStatus = status }
            return exitStatus
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits up to `timeout` seconds; returns the raw wait status, or nil if still running.
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = poll() { return s }
            usleep(5_000)
        }
        return poll()
    }

    /// Exit code when the child exited normally, else nil.
    public static func exitCode(_ status: Int32) -> Int32? {
        (status & 0x7F) == 0 ? (status >> 8) & 0xFF : nil
    }

    /// Terminating signal when the child was killed by one, else nil.
    public static func termSignal(_ status: Int32) -> Int32? {
        let sig = status & 0x7F
        return sig != 0 && sig != 0x7F ? sig : nil
    }

    /// SIGTERM, wait up to `grace` seconds, then SIGKILL; always reaps the child.
    @discardableResult
    public func terminate(grace: Double = 5) -> Int32 {
        signal(SIGTERM)
        if let s = wait(timeout: grace) { return s }
        signal(SIGKILL)
        return wait(timeout: 30) ?? -1
    }

    deinit {
        if poll() == nil {
            _ = kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        if let stdoutFD { close(stdoutFD) }
    }

    /// What the child wrote to stdout so far.
    public func output() -> String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
}
