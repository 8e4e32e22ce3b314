#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import OutpostCore

/// One agent per state directory: an exclusive `flock` on `<state>/agent.lock`, held while the
/// agent runs and released by the kernel when it exits, however it exits (a kill -9 leaves no
/// stale lock to clean up). The holder's pid is written into the file so that a second agent can
/// say who holds it. Two agents on one directory would share `cache.sqlite`, the fleet config
/// store and the invalidation outbox, each believing it owns them.
final class StateDirectoryLock: @unchecked Sendable {
    // @unchecked: `fd` is set once in init and closed once in deinit.
    static let fileName = "agent.lock"
    let path: String
    private let fd: Int32

    struct Held: Error, CustomStringConvertible {
        let directory: String
        let holder: pid_t?
        var description: String {
            let who = holder.map { "the agent with pid \($0)" } ?? "another agent"
            return "the state directory \(directory) is in use by \(who) (its lock \(Paths.join(directory, StateDirectoryLock.fileName)) is held); "
                + "stop that agent or give this one another --state-dir"
        }
    }

    struct Failed: Error, CustomStringConvertible {
        let description: String
    }

    init(directory: String) throws {
        path = Paths.join(directory, Self.fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw Failed(description: "cannot open the state directory lock \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.readPID(fd)
            close(fd)
            throw Held(directory: directory, holder: holder)
        }
        self.fd = fd
        // The pid is only information for the next one to try: written after the lock is ours.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit {
        close(fd)
    }

    private static func readPID(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[..<n], as: UTF8.self)
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { pid_t($0) }
    }
}
