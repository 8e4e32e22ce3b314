import Foundation
@testable import LocalAPI
import Logging
import OutpostCore
import OutpostTesting
import Testing

/// A `LocalAPIServer` running in this process on a Unix socket in a temp directory, in front of
/// a `ScriptedService`.
final class TestServer: Sendable {
    let directory: TemporaryDirectory
    let socketPath: String
    let service: ScriptedService
    private let task: Task<Void, any Error>

    private init(directory: TemporaryDirectory, socketPath: String, service: ScriptedService, task: Task<Void, any Error>) {
        self.directory = directory
        self.socketPath = socketPath
        self.service = service
        self.task = task
    }

    /// Starts a server and returns once it listens.
    static func start(service: ScriptedService = ScriptedService(),
                      _ adjust: (inout LocalAPIServer.Configuration) -> Void = { _ in }) async throws -> TestServer {
        let directory = try TemporaryDirectory(prefix: "outpost-localapi")
        let socketPath = directory.file("api.sock").path
        var configuration = LocalAPIServer.Configuration(socketPath: socketPath)
        // Only the tests of the timeout itself use a short one: on a loaded machine a test's next
        // bytes can come seconds after its last ones.
        configuration.idleTimeout = .seconds(60)
        adjust(&configuration)
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = try LocalAPIServer(configuration: configuration, service: service,
                                        logger: Logger(label: "localapi-test") { _ in SwiftLogNoOpLogHandler() },
                                        onReady: { readyContinuation.yield() })
        let task = Task {
            defer { readyContinuation.finish() }
            try await server.run()
        }
        let started = TestServer(directory: directory, socketPath: socketPath, service: service, task: task)
        var iterator = ready.makeAsyncIterator()
        guard await iterator.next() != nil else {
            let failure = await task.result
            await started.stop()
            throw Failure(description: "the server stopped before it listened: \(failure)")
        }
        return started
    }

    func stop() async {
        service.openGate()
        service.releaseInvalidations()
        task.cancel()
        _ = await task.result
        directory.remove()
    }

    /// A new client connection.
    func connect() async throws -> Client {
        let path = socketPath
        return Client(try await blocking { try UnixSocketConnection(path: path) })
    }

    /// One request on a new connection, and its response.
    func exchange(_ request: String, timeout: Double = 10) async throws -> RawHTTPResponse {
        let client = try await connect()
        defer { client.close() }
        try await client.send(request)
        return try await client.response(timeout: timeout)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }
}

/// A raw client connection whose blocking reads run on a thread of their own, not on the
/// cooperative pool that the server's handlers and the service share.
struct Client: Sendable {
    let connection: UnixSocketConnection

    init(_ connection: UnixSocketConnection) {
        self.connection = connection
    }

    func send(_ text: String) async throws {
        let c = connection
        try await blocking { try c.send(text) }
    }

    func response(timeout: Double = 10) async throws -> RawHTTPResponse {
        let c = connection
        return try await blocking { try c.readResponse(timeout: timeout) }
    }

    /// What arrives within `timeout` seconds: nil when the server closed the connection.
    func receive(timeout: Double) async -> [UInt8]? {
        let c = connection
        return await blocking { c.receive(timeout: timeout) }
    }

    /// Reads until `text` has arrived (true) or `timeout` seconds pass, or the server closes
    /// (false); returns what was read.
    func read(until text: String, timeout: Double) async -> (bytes: [UInt8], found: Bool) {
        let c = connection
        return await blocking {
            let deadline = Date().addingTimeInterval(timeout)
            var bytes: [UInt8] = []
            while !String(decoding: bytes, as: UTF8.self).contains(text) {
                let left = deadline.timeIntervalSinceNow
                guard left > 0, let more = c.receive(timeout: left) else { return (bytes, false) }
                bytes += more
            }
            return (bytes, true)
        }
    }

    /// How long until the server closes the connection, if it does within `timeout` seconds.
    func secondsUntilClosed(timeout: Double) async -> Double? {
        let c = connection
        return await blocking {
            let start = Date()
            return c.closesWithin(timeout) ? Date().timeIntervalSince(start) : nil
        }
    }

    func close() { connection.close() }
}

/// Runs `body` on a new thread and waits for it without holding a cooperative thread.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        Thread { c.resume(returning: body()) }.start()
    }
}

/// Waits until `condition` holds, checking every 10 ms for at most `timeout` seconds; records an
/// issue naming `what` when it never does.
@discardableResult
func eventually(_ what: String, timeout: Double = 5, sourceLocation: SourceLocation = #_sourceLocation,
                _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        guard Date() < deadline else {
            Issue.record("not within \(timeout) s: \(what)", sourceLocation: sourceLocation)
            return false
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return true
}

/// Requests as raw HTTP/1.1.
enum HTTP {
    static func get(_ path: String, headers: String = "") -> String {
        "GET \(path) HTTP/1.1\r\nHost: outpost\r\n\(headers)\r\n"
    }

    static func post(_ path: String, _ body: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: outpost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// A POST to `/v1/chat/completions`.
    static func post(_ body: String) -> String { post("/v1/chat/completions", body) }

    /// A chat request whose one user message is `content`.
    static func chat(_ content: String, extra: String = "") -> String {
        let escaped = String(decoding: try! JSONSerialization.data(withJSONObject: [content]), as: UTF8.self)
        return "{\"messages\":[{\"role\":\"user\",\"content\":\(escaped.dropFirst().dropLast())}]\(extra)}"
    }
}

extension RawHTTPResponse {
    var errorType: String? { (json?["error"] as? [String: Any])?["type"] as? String }
}
