#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials
import OutpostCore

/// Makes a Unix socket path safe to bind: one agent per path (an exclusive `flock` on
/// `<path>.lock`, held while the agent runs), a stale socket file from a crashed agent removed,
/// a live agent's socket or any other kind of file never touched.
public final class UnixSocketGuard: @unchecked Sendable {
    // @unchecked: `lockFD` is set once in init and closed once in deinit.
    public let path: String
    private let lockFD: Int32

    public struct GuardError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(path: String) throws {
        self.path = path
        guard path.utf8.count < 108 else {
            throw GuardError(description: "socket path \(path) is longer than the 107 bytes a Unix socket address holds")
        }
        let dir = Paths.directory(path)
        if !dir.isEmpty {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        }
        let fd = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw GuardError(description: "cannot open \(path).lock: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw GuardError(description: "another agent is already serving \(path) (its lock file \(path).lock is held)")
        }
        lockFD = fd
        do {
            try Self.clearStale(path)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        unlink(path)
        close(lockFD)
    }

    private static func clearStale(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }  // nothing there
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw GuardError(description: "\(path) exists and is not a socket; refusing to replace it")
        }
        if isLive(path) {
            throw GuardError(description: "an agent is already listening on \(path)")
        }
        unlink(path)
    }

    /// Whether something accepts connections on the socket at `path`.
    public static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(107)) + [0]
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// Sets the socket's mode and, when given, its group (by name or number).
    public func setPermissions(mode: mode_t, group: String?) throws {
        guard chmod(path, mode) == 0 else {
            throw GuardError(description: "chmod \(path): \(String(cString: strerror(errno)))")
        }
        guard let group, !group.isEmpty else { return }
        let gid: gid_t
        if let g = getgrnam(group) {
            gid = g.pointee.gr_gid
        } else if let n = UInt32(group) {
            gid = n
        } else {
            throw GuardError(description: "no group named \(group)")
        }
        guard chown(path, uid_t.max, gid) == 0 else {
            throw GuardError(description: "chgrp \(group) \(path): \(String(cString: strerror(errno)))")
        }
    }
}
