import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with posix_spawn, its signal mask cleared and its stdout on a pipe
/// read line by line; stderr is inherited. `killAndWait()` sends SIGKILL and reaps it.
public final class ChildProcess {
    public let pid: pid_t
    private let stdoutFD: Int32
    private var buffer: [UInt8] = []
    private var reaped = false
    private var status: Int32 = 0

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ executable: String, _ arguments: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe failed: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw SpawnError(description: "posix_spawn \(executable) failed: \(rc)")
        }
        pid = child
        stdoutFD = fds[0]
    }

    /// The next line of the child's stdout, without the newline; nil at end of file.
    public func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Sends SIGKILL, waits for the child, and returns the signal that ended it (0 if it exited).
    @discardableResult
    public func killAndWait() -> Int32 {
        if !reaped {
            _ = kill(pid, SIGKILL)
            var s: Int32 = 0
            while waitpid(pid, &s, 0) < 0 && errno == EINTR {}
            status = s
            reaped = true
        }
        // WIFSIGNALED / WTERMSIG by hand: the macros do not import.
        let signal = status & 0x7F
        return signal != 0 && signal != 0x7F ? signal : 0
    }

    deinit {
        killAndWait()
        close(stdoutFD)
    }
}
