#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Synchronization

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

    /// A loopback TCP port that is free now and that nothing else in this process was given.
    ///
    /// The port is taken below the kernel's ephemeral range (`ip_local_port_range`), not by
    /// binding port 0: an ephemeral port can be handed to any outgoing connection as its local
    /// port the moment it is released, so a broker restarted on "its" port after a kill could find
    /// a client socket of another test sitting there ("Address already in use"). Below the range
    /// only an explicit bind takes a port, and each port is handed out once per process.
    public static func freeLoopbackPort() throws -> Int {
        let (low, high) = candidatePortRange()
        return try portAllocator.withLock { next -> Int in
            let span = high - low
            var offset = next ?? Int(getpid()) % span  // test processes of one run start apart
            defer { next = offset }
            for _ in 0..<span {
                let port = low + offset % span
                offset += 1
                if canBind(port: port) { return port }
            }
            throw BrokerError(description: "no free loopback port in \(low)..<\(high)")
        }
    }

    /// Offset of the next candidate port, shared by every caller in this process.
    private static let portAllocator = Mutex<Int?>(nil)

    /// Ports [low, high) under the ephemeral range: from 10000 up to its start (32768 by default;
    /// from 1024 if the range starts that low).
    private static func candidatePortRange() -> (Int, Int) {
        let top = min(ephemeralPortRangeStart(), 65536)
        return top > 11000 ? (10000, top) : (1024, max(top, 2048))
    }

    /// The first port of the kernel's ephemeral range (`ip_local_port_range`), 32768 if unreadable.
    public static func ephemeralPortRangeStart() -> Int {
        // read(2): /proc files report a size of 0, which whole-file readers take at its word
        let fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY)
        guard fd >= 0 else { return 32768 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        let digits = buffer.prefix(max(n, 0)).prefix(while: { $0 >= 0x30 && $0 <= 0x39 })
        return Int(String(decoding: digits, as: UTF8.self)) ?? 32768
    }

    private static func canBind(port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, addr, len in bind(fd, addr, len) == 0 }
    }

    public static func canConnect(port: Int) -> Bool {
        withLoopbackSocket(port: port) { fd, addr, len in connect(fd, addr, len) == 0 }
    }

    /// A new TCP socket and the address 127.0.0.1:port, for `body`; the socket is closed after.
    private static func withLoopbackSocket(
        port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool
    ) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
