#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A real `mosquitto` broker on a free loopback port, for tests. The broker logs to stdout,
/// captured in `logPath`. `stop()` and `start()` let a test kill and restart it on the same port.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: `process` is guarded by `lock`.
    public let port: Int
    public let directory: TemporaryDirectory
    public var logPath: String { directory.file("mosquitto.log").path }
    public var configPath: String { directory.file("mosquitto.conf").path }
    public var url: String { "mqtt://127.0.0.1:\(port)" }
    private let lock = NSLock()
    private var process: ChildProcess?

    public struct BrokerError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Candidate locations of the broker binary (Debian installs it in /usr/sbin).
    public static func executable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        for d in dirs {
            let candidate = (d as NSString).appendingPathComponent("mosquitto")
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw BrokerError(description: "mosquitto not found (apt-get install mosquitto)")
    }

    /// Starts a broker. `extraConfig` lines are appended to the generated configuration (after
    /// the default listener), e.g. a TLS listener or persistence settings.
    public init(extraConfig: String = "", persistence: Bool = false) throws {
        directory = try TemporaryDirectory(prefix: "outpost-mosquitto")
        port = try Self.freeLoopbackPort()
        var config = """
        listener \(port) 127.0.0.1
        allow_anonymous true
        log_dest stdout
        log_type all
        max_queued_messages 10000

        """
        if persistence {
            config += "persistence true\npersistence_location \(directory.path)/\n"
        }
        config += extraConfig + "\n"
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try start()
    }

    /// Starts (or restarts) the broker and waits until it accepts connections.
    public func start() throws {
        try lock.withLock {
            if let p = process, p.isRunning { return }
            process = try ChildProcess(executable: try Self.executable(), arguments: ["-c", configPath],
                                       stdoutPath: logPath)
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.canConnect(port: port) { return }
            if let p = lock.withLock({ process }), !p.isRunning {
                throw BrokerError(description: "mosquitto exited at start; log:\n\(log())")
            }
            usleep(10_000)
        }
        throw BrokerError(description: "mosquitto did not accept connections on port \(port) within 10 s; log:\n\(log())")
    }

    /// Stops the broker (SIGTERM, then SIGKILL after a grace period).
    public func stop() {
        let p = lock.withLock { () -> ChildProcess? in
            defer { process = nil }
            return process
        }
        p?.terminate(grace: 5)
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    public func kill() {
        let p = lock.withLock { () -> ChildProcess? in
            defer { process = nil }
            return process
        }
        p?.signal(SIGKILL)
        _ = p?.wait(timeout: 10)
    }

    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        stop()
        directory.remove()
    }

    /// A loopback TCP port that was free a moment ago (bound to port 0, then released).
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BrokerError(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard bound else { throw BrokerError(description: "bind: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    public static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
